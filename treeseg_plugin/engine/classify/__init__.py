"""Classify from Examples: the linear classifier on patch features, its grouped cross-validation, the one-class
similarity, the ``.tscc`` file and the prediction on the pixel grid (docs/classify.md)."""
