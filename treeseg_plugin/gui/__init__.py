"""TreeSeg's dialogs inside QGIS: settings, weights manager, dependency installer, result presentation."""
