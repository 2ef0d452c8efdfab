"""TreeSeg: DINOv3 features + k-means tree segmentation (QGIS-free engine and backbone, thin GUI glue)."""
