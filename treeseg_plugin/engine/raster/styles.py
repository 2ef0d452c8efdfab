"""QGIS layer styles (``.qml``) for the layers TreeSeg writes: labels, tree mask, canopy heights, crowns.

One skeleton for the rasters: a ``<qgis>`` root with a ``<pipe>`` holding the renderer, and the QGIS DOCTYPE
line; the crowns' outlines are a single-symbol vector renderer. The formats are QGIS 3.22's (read by every
later version).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Dict, Iterable, Tuple

PaletteEntry = Tuple[int, str, str, str]
"""(value, colour "#rrggbb", alpha "0".."255", label) of one paletted-renderer entry."""


def style_root() -> Tuple[ET.Element, ET.Element]:
    """A new style document: (the ``<qgis>`` root, its ``<pipe>``)."""
    root = ET.Element("qgis", {"version": "3.22.0", "styleCategories": "AllStyleCategories"})
    return root, ET.SubElement(root, "pipe")


def add_renderer(pipe: ET.Element, kind: str, attributes: Dict[str, str], opacity: float = 1.0) -> ET.Element:
    """A band-1 ``<rasterrenderer>`` of ``kind`` (layer ``opacity`` 0..1, no alpha band, NoData not drawn) in
    ``pipe``."""
    renderer = ET.SubElement(pipe, "rasterrenderer", {"type": kind, "band": "1", "opacity": f"{opacity:g}",
                                                      "alphaBand": "-1", **attributes, "nodataColor": ""})
    ET.SubElement(renderer, "rasterTransparency")
    return renderer


def add_palette(pipe: ET.Element, entries: Iterable[PaletteEntry], opacity: float = 1.0) -> None:
    """A paletted renderer with ``entries`` (layer ``opacity`` 0..1); values without an entry are drawn
    transparent."""
    palette = ET.SubElement(add_renderer(pipe, "paletted", {}, opacity), "colorPalette")
    for value, color, alpha, label in entries:
        ET.SubElement(palette, "paletteEntry", {"value": str(value), "color": color, "alpha": alpha, "label": label})


def outline_style(color: Tuple[int, int, int], width_mm: float) -> str:
    """A polygon style: outlines of ``color`` (RGB), ``width_mm`` wide, no fill, so what is below shows."""
    root = ET.Element("qgis", {"version": "3.22.0", "styleCategories": "Symbology"})
    renderer = ET.SubElement(root, "renderer-v2", {"type": "singleSymbol", "symbollevels": "0",
                                                   "enableorderby": "0", "forceraster": "0"})
    symbol = ET.SubElement(ET.SubElement(renderer, "symbols"), "symbol", {
        "type": "fill", "name": "0", "alpha": "1", "clip_to_extent": "1", "force_rhr": "0"})
    layer = ET.SubElement(symbol, "layer", {"class": "SimpleFill", "enabled": "1", "locked": "0", "pass": "0"})
    for key, value in (("color", "0,0,0,0"), ("style", "no"), ("outline_color", "{},{},{},255".format(*color)),
                       ("outline_style", "solid"), ("outline_width", f"{width_mm:g}"), ("outline_width_unit", "MM")):
        ET.SubElement(layer, "prop", {"k": key, "v": value})
    return style_text(root)


def style_text(root: ET.Element) -> str:
    """The document as QGIS writes a ``.qml``: DOCTYPE line, indented XML, final newline."""
    ET.indent(root)
    return "<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n" + ET.tostring(root, encoding="unicode") + "\n"


def write_style(path: str, text: str) -> None:
    """Write the style ``text`` to ``path`` (UTF-8)."""
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)
