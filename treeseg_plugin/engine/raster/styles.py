"""QGIS layer styles (``.qml``) for the rasters TreeSeg writes: labels, tree mask, canopy heights.

One skeleton for all three: a ``<qgis>`` root with a ``<pipe>`` holding the renderer, and the QGIS DOCTYPE
line. The formats are QGIS 3.22's (read by every later version).

The styles are only written, never parsed, so they are built with the small ``StyleElement`` below rather
than ``xml.etree`` (whose import the plugin repository's scanner, bandit B405, blocks). Its text is what
ElementTree wrote with ``indent``: two-space indentation, ``<tag a="v" />`` for empty elements, and the same
escaping of ``& < > "`` and of tabs and line breaks in attribute values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Optional, Tuple

PaletteEntry = Tuple[int, str, str, str]
"""(value, colour "#rrggbb", alpha "0".."255", label) of one paletted-renderer entry."""

_TEXT_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})
_ATTRIBUTE_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;",
                                    "\r": "&#13;", "\n": "&#10;", "\t": "&#09;"})


@dataclass
class StyleElement:
    """One XML element of a style: its attributes in order, and either child elements or text."""

    tag: str
    attributes: Dict[str, str] = field(default_factory=dict)
    children: List[StyleElement] = field(default_factory=list)
    text: str = ""

    def add(self, tag: str, attributes: Optional[Dict[str, str]] = None) -> StyleElement:
        """A new child element ``tag`` with ``attributes``, appended last."""
        child = StyleElement(tag, dict(attributes or {}))
        self.children.append(child)
        return child

    def lines(self, depth: int = 0) -> List[str]:
        """The element as indented lines of XML, ``depth`` levels in."""
        indent = "  " * depth
        attributes = "".join(f' {name}="{value.translate(_ATTRIBUTE_ESCAPES)}"'
                             for name, value in self.attributes.items())
        if self.children:
            inner = [line for child in self.children for line in child.lines(depth + 1)]
            return [f"{indent}<{self.tag}{attributes}>", *inner, f"{indent}</{self.tag}>"]
        if self.text:
            return [f"{indent}<{self.tag}{attributes}>{self.text.translate(_TEXT_ESCAPES)}</{self.tag}>"]
        return [f"{indent}<{self.tag}{attributes} />"]


def style_root() -> Tuple[StyleElement, StyleElement]:
    """A new style document: (the ``<qgis>`` root, its ``<pipe>``)."""
    root = StyleElement("qgis", {"version": "3.22.0", "styleCategories": "AllStyleCategories"})
    return root, root.add("pipe")


def add_renderer(pipe: StyleElement, kind: str, attributes: Dict[str, str]) -> StyleElement:
    """A band-1 ``<rasterrenderer>`` of ``kind`` (opaque, no alpha band, NoData not drawn) in ``pipe``."""
    renderer = pipe.add("rasterrenderer", {"type": kind, "band": "1", "opacity": "1", "alphaBand": "-1",
                                           **attributes, "nodataColor": ""})
    renderer.add("rasterTransparency")
    return renderer


def add_palette(pipe: StyleElement, entries: Iterable[PaletteEntry]) -> None:
    """A paletted renderer with ``entries``; values without an entry are drawn transparent."""
    palette = add_renderer(pipe, "paletted", {}).add("colorPalette")
    for value, color, alpha, label in entries:
        palette.add("paletteEntry", {"value": str(value), "color": color, "alpha": alpha, "label": label})


def style_text(root: StyleElement) -> str:
    """The document as QGIS writes a ``.qml``: DOCTYPE line, indented XML, final newline."""
    return "<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n" + "\n".join(root.lines()) + "\n"


def write_style(path: str, text: str) -> None:
    """Write the style ``text`` to ``path`` (UTF-8)."""
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)
