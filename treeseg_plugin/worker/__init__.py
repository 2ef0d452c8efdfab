"""The worker process that runs an engine job (:mod:`.process`) and the client that starts it (:mod:`.client`):
QGIS stays light and alive whatever the run does."""
