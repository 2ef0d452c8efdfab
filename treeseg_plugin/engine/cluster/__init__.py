"""Clustering: k-means, the choice of K, the cluster model and its file, labels on the pixel grid."""
