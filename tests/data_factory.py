"""Synthetic georeferenced rasters for the engine tests, written with GDAL.

``make_raster`` writes any size / band count / data type with optional NoData, alpha band or GDAL
mask, filled with a pattern that has distinct textured regions (so k-means finds clusters).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np
from osgeo import gdal, osr

gdal.UseExceptions()

GDAL_TYPES = {"Byte": gdal.GDT_Byte, "UInt16": gdal.GDT_UInt16, "Int16": gdal.GDT_Int16,
              "UInt32": gdal.GDT_UInt32, "Float32": gdal.GDT_Float32, "Float64": gdal.GDT_Float64}
NUMPY_TYPES = {"Byte": np.uint8, "UInt16": np.uint16, "Int16": np.int16, "UInt32": np.uint32,
               "Float32": np.float32, "Float64": np.float64}
# value = offset + scale * pattern (pattern in 0..1)
VALUE_RANGES = {"Byte": (0.0, 254.0), "UInt16": (200.0, 3800.0), "Int16": (-1000.0, 3000.0),
                "UInt32": (5000.0, 60000.0), "Float32": (-2.0, 7.5), "Float64": (10.0, 90.0)}
ORIGIN = (500000.0, 3300000.0)


def pattern(height: int, width: int, bands: int = 3, kind: str = "regions", seed: int = 0) -> np.ndarray:
    """A float array [bands, height, width] in 0..1.

    ``regions``: three vertical strips (noisy dark green, smooth tan gradient, blue 8 px checkerboard);
    ``blobs``: bright round "crowns" on a dark textured ground; ``noise``: uniform noise;
    ``flat``: mid grey everywhere.
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    out = np.zeros((bands, height, width))
    if kind == "flat":
        out[:] = 0.5
    elif kind == "noise":
        out[:] = rng.random((bands, height, width))
    elif kind == "regions":
        third = max(1, width // 3)
        strip = np.minimum(xx // third, 2).astype(int)
        noise = rng.random((height, width))
        checker = (((yy // 8) + (xx // 8)) % 2).astype(np.float64)
        colours = np.array([[0.10, 0.35, 0.12], [0.80, 0.70, 0.50], [0.20, 0.30, 0.85]])
        texture = [0.35 * (noise - 0.5), 0.15 * (yy / max(1, height - 1) - 0.5), 0.45 * (checker - 0.5)]
        for b in range(bands):
            base = colours[:, b % 3][strip]
            tex = np.choose(strip, texture)
            out[b] = base + tex
    elif kind == "blobs":
        ground = 0.15 + 0.1 * rng.random((height, width))
        crowns = np.zeros((height, width))
        for _ in range(max(3, height * width // 2500)):
            cy, cx, r = rng.random() * height, rng.random() * width, 6 + rng.random() * 14
            crowns = np.maximum(crowns, np.clip(1 - np.hypot(yy - cy, xx - cx) / r, 0, 1))
        for b in range(bands):
            out[b] = ground + crowns * (0.7 if b == 1 else 0.45)
    else:
        raise ValueError(kind)
    return np.clip(out, 0.0, 1.0)


def make_raster(path: Union[str, Path], width: int, height: int, bands: int = 3, dtype: str = "Byte",
                nodata: Optional[float] = None, epsg: Optional[int] = 32617, pixel_size: float = 0.1,
                kind: str = "regions", seed: int = 0, alpha: Optional[np.ndarray] = None,
                mask: Optional[np.ndarray] = None, invalid: Optional[np.ndarray] = None,
                data: Optional[np.ndarray] = None, tiled: bool = False,
                creation_options: Sequence[str] = (), origin: Sequence[float] = ORIGIN) -> Path:
    """Write a GeoTIFF and return its path.

    ``invalid`` (bool [h, w]) sets those pixels to ``nodata`` (NaN for floats when nodata is None);
    ``alpha`` (uint8 [h, w]) adds an alpha band; ``mask`` (bool [h, w], True = valid) adds a GDAL
    per-dataset mask band. ``data`` ([bands, h, w] in the target type) replaces the pattern.
    """
    path = Path(path)
    if data is None:
        low, span = VALUE_RANGES[dtype]
        values = low + span * pattern(height, width, bands, kind, seed)
        data = np.round(values) if NUMPY_TYPES[dtype]().dtype.kind in "iu" else values
        data = data.astype(NUMPY_TYPES[dtype])
    data = np.array(data)
    if invalid is not None:
        fill = nodata if nodata is not None else np.nan
        data[:, invalid] = fill
    options = list(creation_options) + (["TILED=YES"] if tiled else [])
    if alpha is not None:
        options.append("ALPHA=YES")
    ds = gdal.GetDriverByName("GTiff").Create(str(path), width, height, bands + (alpha is not None),
                                              GDAL_TYPES[dtype], options=options)
    ds.SetGeoTransform((origin[0], pixel_size, 0.0, origin[1], 0.0, -pixel_size))
    if epsg is not None:
        srs = osr.SpatialReference()
        srs.ImportFromEPSG(epsg)
        ds.SetSpatialRef(srs)
    for b in range(bands):
        band = ds.GetRasterBand(b + 1)
        if nodata is not None:
            band.SetNoDataValue(nodata)
        band.WriteArray(data[b])
    if alpha is not None:
        band = ds.GetRasterBand(bands + 1)
        band.SetColorInterpretation(gdal.GCI_AlphaBand)
        band.WriteArray(alpha.astype(NUMPY_TYPES[dtype]))
    if mask is not None:
        ds.CreateMaskBand(gdal.GMF_PER_DATASET)
        ds.GetRasterBand(1).GetMaskBand().WriteArray(np.where(mask, 255, 0).astype(np.uint8))
    ds = None
    return path


def trap_vrt(folder: Union[str, Path], x0: int, y0: int, side: int, size: int = 20000,
             pixel_size: float = 0.1) -> Path:
    """A ``size`` x ``size`` UInt16 3-band VRT ("huge.vrt", EPSG:32617, origin :data:`ORIGIN`) that is real
    only in the square ``[x0, x0+side) x [y0, y0+side)`` (a "blobs" pattern); everywhere else its pixels
    come from a file that does not exist, so any read outside that square fails. Writing it takes
    milliseconds: it proves that a reader touches only the part it should."""
    folder = Path(folder)
    real = make_raster(folder / "real-part.tif", side, side, dtype="UInt16", kind="blobs")
    trap = folder / "never-read.tif"
    rects = [(0, 0, size, y0), (0, y0 + side, size, size - y0 - side), (0, y0, x0, side),
             (x0 + side, y0, size - x0 - side, side)]

    def source(path: Path, band: int, extent: int, src: tuple, dst: tuple) -> str:
        return (f'<SimpleSource><SourceFilename relativeToVRT="0">{path}</SourceFilename>'
                f"<SourceBand>{band}</SourceBand>"
                f'<SourceProperties RasterXSize="{extent}" RasterYSize="{extent}" DataType="UInt16" '
                'BlockXSize="256" BlockYSize="256"/>'
                f'<SrcRect xOff="{src[0]}" yOff="{src[1]}" xSize="{src[2]}" ySize="{src[3]}"/>'
                f'<DstRect xOff="{dst[0]}" yOff="{dst[1]}" xSize="{dst[2]}" ySize="{dst[3]}"/></SimpleSource>')

    bands = []
    for b in (1, 2, 3):
        sources = [source(trap, b, size, r, r) for r in rects if r[2] > 0 and r[3] > 0]
        sources.append(source(real, b, side, (0, 0, side, side), (x0, y0, side, side)))
        bands.append(f'<VRTRasterBand dataType="UInt16" band="{b}">{"".join(sources)}</VRTRasterBand>')
    vrt = folder / "huge.vrt"
    vrt.write_text(f'<VRTDataset rasterXSize="{size}" rasterYSize="{size}"><SRS>EPSG:32617</SRS>'
                   f"<GeoTransform>{ORIGIN[0]}, {pixel_size}, 0, {ORIGIN[1]}, 0, {-pixel_size}</GeoTransform>"
                   f'{"".join(bands)}</VRTDataset>')
    return vrt


SCENE_SIZE = 192
SCENE_PIXEL = 0.5  # metres: the scene is 96 m x 96 m


def vegetation_scene(seed: int = 0) -> dict[str, np.ndarray]:
    """A 192 x 192 px scene at 0.5 m with known parts (bool masks ``trees``, ``grass``, ``court``, ``soil``):
    a stand of round dark-green textured crowns (left half; heights 10-16 m at the tops, 4 m at the edges),
    a light-green lawn (0.2 m high), a smooth teal sports court (green to ExG, but no NIR: not vegetation;
    0 m) and tan soil (0 m). Returns those masks and ``rgb`` [3, h, w], ``nir`` [h, w] in 0..1 and
    ``height`` [h, w] in metres."""
    rng = np.random.default_rng(seed)
    size = SCENE_SIZE
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    trees = np.zeros((size, size), bool)
    height = np.zeros((size, size))
    for cy in range(12, size, 21):
        for cx in range(12, 90, 21):
            radius, top = 11 + 2 * rng.random(), 10 + 6 * rng.random()
            d = np.hypot(yy - cy - rng.integers(-2, 3), xx - cx - rng.integers(-2, 3)) / radius
            crown = d < 1
            height[crown] = np.maximum(height[crown], top - (top - 4) * d[crown] ** 2)
            trees |= crown
    grass = (xx >= 112) & (xx < 176) & (yy >= 16) & (yy < 80)
    court = (xx >= 112) & (xx < 176) & (yy >= 112) & (yy < 176)
    height[grass] = 0.2
    soil = ~(trees | grass | court)
    noise = rng.random((size, size)) - 0.5
    rgb = np.empty((3, size, size))
    nir = np.empty((size, size))
    for mask, colour, texture, infrared in ((soil, (0.62, 0.50, 0.36), 0.05, 0.30),
                                            (trees, (0.10, 0.32, 0.08), 0.10, 0.60),
                                            (grass, (0.30, 0.62, 0.22), 0.03, 0.85),
                                            (court, (0.12, 0.50, 0.42), 0.0, 0.08)):
        for band in range(3):
            rgb[band][mask] = colour[band] + texture * colour[band] * noise[mask]
        nir[mask] = infrared + 0.05 * noise[mask]
    return {"rgb": np.clip(rgb, 0, 1), "nir": np.clip(nir, 0, 1), "height": height, "trees": trees,
            "grass": grass, "court": court, "soil": soil}


def write_scene(path: Union[str, Path], scene: dict[str, np.ndarray], nir: bool = False) -> Path:
    """The scene as a Byte GeoTIFF (RGB, or RGBN with ``nir``) at 0.5 m in EPSG:32617."""
    bands = [scene["rgb"][0], scene["rgb"][1], scene["rgb"][2]] + ([scene["nir"]] if nir else [])
    data = np.round(np.stack(bands) * 250).astype(np.uint8)
    return make_raster(path, SCENE_SIZE, SCENE_SIZE, bands=len(bands), data=data, pixel_size=SCENE_PIXEL)


def write_chm(path: Union[str, Path], height: np.ndarray, epsg: int = 3857, pixel_size: float = 1.0,
              nodata_box: Optional[tuple[int, int, int, int]] = None) -> Path:
    """A canopy height model (Float32, metres, NoData -9999) of the scene's heights, warped to ``epsg`` at
    ``pixel_size``; ``nodata_box`` (x0, y0, x1, y1 in scene pixels) is NoData."""
    path = Path(path)
    height = height.astype(np.float32).copy()
    if nodata_box is not None:
        x0, y0, x1, y1 = nodata_box
        height[y0:y1, x0:x1] = -9999
    fine = make_raster(path.with_suffix(".fine.tif"), SCENE_SIZE, SCENE_SIZE, bands=1, dtype="Float32",
                       data=height[None], nodata=-9999, pixel_size=SCENE_PIXEL)
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(epsg)
    gdal.Warp(str(path), str(fine), dstSRS=srs.ExportToWkt(), xRes=pixel_size, yRes=pixel_size,
              resampleAlg="average", srcNodata=-9999, dstNodata=-9999)
    fine.unlink()
    return path
