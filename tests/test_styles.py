"""The .qml writer (engine/raster/styles.py) without xml.etree: exact text and escaping of user labels; the styles as
QGIS reads them."""

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


def test_the_height_style_ramps_from_0_to_40_m_in_qgis(tmp_path):
    """QGIS reads the canopy height style as a pseudocolour ramp over 0..40 m (its documented range), with the
    stops 0, 5, 15, 25 and 40 m."""
    from qgis.core import QgsRasterLayer
    from treeseg.treeseg_plugin.engine.raster.height_raster import write_height_qml

    from tests.data_factory import make_raster

    path = make_raster(tmp_path / "heights.tif", 8, 8, bands=1, dtype="Float32")
    write_height_qml(str(tmp_path / "heights.qml"))
    layer = QgsRasterLayer(str(path), "heights")
    message, ok = layer.loadNamedStyle(str(tmp_path / "heights.qml"))
    assert ok, message
    renderer = layer.renderer()
    assert (renderer.classificationMin(), renderer.classificationMax()) == (0.0, 40.0)
    items = renderer.shader().rasterShaderFunction().colorRampItemList()
    assert [item.value for item in items] == [0.0, 5.0, 15.0, 25.0, 40.0]
