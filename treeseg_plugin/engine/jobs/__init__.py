"""Each job's settings, their up-front check and its result: torch-free, so QGIS builds and checks jobs."""
