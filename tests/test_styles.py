"""The .qml writer (engine/raster/styles.py) without xml.etree: exact text and escaping of user labels."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from treeseg.treeseg_plugin.engine.raster.styles import add_palette, style_root, style_text

AWKWARD = 'Oaks & "limes" <5 m>\n\tnext'


def test_style_text_is_indented_xml_with_empty_elements_closed():
    root, pipe = style_root()
    add_palette(pipe, [(1, "#00ff00", "255", "trees")])
    root.add("blendMode").text = "0"
    expected = "\n".join([  # written by hand from QGIS's .qml layout
        "<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>",
        '<qgis version="3.22.0" styleCategories="AllStyleCategories">',
        "  <pipe>",
        '    <rasterrenderer type="paletted" band="1" opacity="1" alphaBand="-1" nodataColor="">',
        "      <rasterTransparency />",
        "      <colorPalette>",
        '        <paletteEntry value="1" color="#00ff00" alpha="255" label="trees" />',
        "      </colorPalette>",
        "    </rasterrenderer>",
        "  </pipe>",
        "  <blendMode>0</blendMode>",
        "</qgis>",
        ""])
    assert style_text(root) == expected


def test_labels_with_markup_characters_are_escaped_and_read_back_unchanged():
    root, pipe = style_root()
    add_palette(pipe, [(1, "#00ff00", "255", AWKWARD)])
    root.add("note").text = "a < b & c"
    text = style_text(root)
    assert 'label="Oaks &amp; &quot;limes&quot; &lt;5 m&gt;&#10;&#09;next"' in text
    parsed = ET.fromstring(text.split("\n", 1)[1])  # noqa: S314 - our own output
    assert parsed.find("pipe/rasterrenderer/colorPalette/paletteEntry").get("label") == AWKWARD
    assert parsed.find("note").text == "a < b & c"
