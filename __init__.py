"""QGIS entry point of the TreeSeg plugin.

``classFactory`` is also called by ``qgis_process`` with ``iface=None``: it only builds the plugin object,
with no GUI, network or pip work, so headless runs stay fast and side-effect free.
"""

from __future__ import annotations


def classFactory(iface):  # the name is fixed by QGIS
    """Return the plugin object for QGIS (``iface`` may be None under qgis_process)."""
    from .treeseg_plugin.plugin import TreeSegPlugin

    return TreeSegPlugin(iface)
