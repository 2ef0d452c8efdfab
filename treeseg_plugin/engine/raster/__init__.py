"""Rasters in and out: the input and its NoData, georeferencing, the GeoTIFF writers, polygons, styles and
all-or-nothing staging."""
