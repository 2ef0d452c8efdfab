"""The help text of Segment Trees (shown in the algorithm dialog and by qgis_process help)."""

from __future__ import annotations

from ..treeseg_plugin.i18n import tr, translatable

_HELP_SOURCE = translatable("""<p>Segments an orthophoto into K clusters of similar texture and colour (tree crowns,
shadows, grass, bare soil...) with Meta's DINOv3 vision transformer and k-means, without training data.</p>

<h3>How it works</h3>
<ol>
<li>The orthophoto is read in overlapping tiles (reflection-padded at the edges); only each tile's centre
is kept, so there are no seams. NoData, alpha and mask pixels are ignored. Byte bands are used as they are;
16-bit and float bands are stretched per band between their 2nd and 98th percentiles, sampled in the
extent (or the whole raster).</li>
<li>The DINOv3 backbone turns every 16x16-pixel patch (every 8 or 4 pixels with a smaller patch stride)
into a feature vector, normalised with the mean and standard deviation that belong to the weights
(ImageNet for LVD-1689M, the satellite statistics for SAT-493M). Each patch feature is scaled to unit length,
so k-means compares directions (cosine similarity).</li>
<li>k-means (k-means++ initialisation, several seeded restarts) is fitted on at most <i>Maximum k-means
samples</i> valid patch features drawn over the whole extent (or raster), for every K from <i>Minimum K</i> to
<i>Maximum K</i>. Its within-cluster sum of squares (WCSS) is logged for each K.</li>
<li>With K = 0 the number of clusters is chosen automatically: <b>the smallest K whose step to K+1 lowers
the WCSS by less than the elbow threshold (in percent); the maximum K when no step is that small.</b></li>
<li>Every patch gets its distances to the K centroids; these are interpolated to the pixels before each
pixel takes the nearest centroid, so boundaries follow the image rather than 16-pixel blocks.</li>
</ol>

<h3>Web maps</h3>
<p>The orthophoto may be any QGIS raster layer: an XYZ basemap, WMS, WMTS, WCS, ArcGIS or PostGIS layer is
fetched through QGIS (its authentication and proxy apply) over the <i>Extent</i> (empty: the map canvas
extent) at the <i>Working resolution</i>, which it then needs, into a temporary GeoTIFF removed after the run.
See docs/web-layers.md.</p>

<h3>Output</h3>
<p>A Byte GeoTIFF with exactly the input's (or the extent's) grid and CRS: labels 1..K, 1 being the
cluster with the most patches in the fit sample (not always the most pixels), 0 = NoData, with a colour
table and a .qml style beside it. Optional: a statistics report (.json, .csv or .html with an elbow chart)
and cluster polygons. CHOSEN_K returns the K used.</p>

<h3>Which clusters are trees</h3>
<p>While the labels are written, each cluster's mean colour, excess green (ExG), VARI, NDVI (with a
<i>Near-infrared band</i>) and canopy height (mean, median, 90th percentile, with a <i>Canopy height
raster</i> in metres, resampled to the orthophoto's grid) are measured. The first rule with evidence
decides: the <i>Tree clusters</i> you name; else a median height of at least <i>Minimum tree height</i>; else
NDVI of at least 0.4; else ExG of at least 0.05 with VARI of at least 0. The log gives the numbers. Tree
clusters are named "Cluster N: trees" and drawn in greens. Optional outputs: the <i>Tree canopy mask</i>
(1 = trees, 0 = not, 255 = NoData) and the <i>Tree crowns</i>, split by a watershed from treetops of the canopy
height (or of the distance to the canopy edge), crowns under <i>Minimum crown area</i> left out.</p>

<h3>Cluster models</h3>
<p><i>Cluster model (save)</i> keeps the clusters this run fits in a .tscm file; <i>Cluster model (apply)</i>
labels with a saved model instead of fitting (its band stretch, centroids and colours; the K settings are
not used), so several rasters share label numbers and colours. Fit Cluster Model fits one model on several
rasters. A model from other weights, another patch stride or other bands is refused before encoding.</p>

<h3>Device</h3>
<p><i>auto</i> uses a CUDA GPU, then Apple MPS, then the CPU. A device you choose is honoured or refused:
<i>cuda</i> stops with a message when PyTorch sees no CUDA GPU (a CPU-only PyTorch, a missing driver), and
<i>mps</i> when MPS is not available. TreeSeg never falls back to the CPU silently, because on the CPU a run
takes many times longer; choose <i>auto</i> to get the fall-back.</p>

<h3>When a run stops</h3>
<p>Every problem stops the run with one message that says what is wrong and what to do; nothing is
written. Outputs are written to hidden <i>.treeseg-*</i> folders beside them and moved into place only when
the whole run succeeded, so a failed or canceled run leaves an earlier result untouched. The messages and
their fixes are listed in the TreeSeg documentation (docs/troubleshooting-run.md).</p>

<h3>Weights</h3>
<p>DINOv3 weights are gated by Meta. Accept the licence on Hugging Face (for example
facebook/dinov3-vits16-pretrain-lvd1689m) or through Meta's download form, then either give the
downloaded file as <i>Weights file</i> or keep it in the Hugging Face cache. Downloads happen only when
<i>Allow downloading weights</i> is on. Without weights the algorithm stops with a message saying where it
looked; it never uses random weights. In QGIS, <i>Raster > Tree Segmentation > Weights…</i> shows which
models are present and imports downloaded files; <i>Settings…</i> holds the weights folder, the Hugging Face
token (kept in QGIS's authentication database) and the default device and precision.</p>
""")


def short_help() -> str:
    """The help in the user's language. QGIS turns line breaks into paragraph breaks: the source (and its
    translation) stays wrapped, QGIS gets single spaces."""
    return " ".join(tr(_HELP_SOURCE).split())
