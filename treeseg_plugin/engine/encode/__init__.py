"""Encoding: the tile grid, device and precision, the backbone in a run and the patch features it writes."""
