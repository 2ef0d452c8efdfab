"""Batch runs outside QGIS: one cluster model for many rasters, locally or on Dask (``python -m treeseg_plugin``)."""
