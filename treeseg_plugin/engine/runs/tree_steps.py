"""The pipeline's tree steps: the canopy heights on the label grid, the tree rule with its log, and the
TREES and CROWNS outputs (staged like every output), each returning what the statistics' tree section
(engine/runs/statistics.py: TreeStatistics) says about it. engine/runs/segmentation.py calls them in its stages."""

from __future__ import annotations

import contextlib
import os
from typing import Any, Optional, Sequence

from ..errors import Canceled, EngineError, write_error
from ..jobs.segmentation import TreeSettings
from ..progress import Progress
from ..raster.georef import PixelArea, Window
from ..raster.pixels import RasterSource
from ..raster.staging import Staging
from ..trees.evidence import EvidenceAccumulator, HeightGrid
from ..trees.mask import write_tree_mask
from ..trees.rule import decide_trees, evidence_line
from .statistics import TreeStatistics


def prepare(settings: TreeSettings, crowns: bool, source: RasterSource, window: Window, gt: Any,
            stack: contextlib.ExitStack) -> Optional[HeightGrid]:
    """Before the model loads: CROWNS' scipy is there when ``crowns`` are asked for; the canopy height raster
    on the label grid (closed with ``stack``), when one is given."""
    if crowns:
        try:
            import scipy.ndimage  # noqa: F401  (engine/trees/crowns.py's watershed)
        except ImportError as exc:
            raise EngineError(f"Tree crowns need scipy, which this Python cannot import ({exc}). Install QGIS's "
                              "scipy package (Debian: python3-scipy; OSGeo4W: python3-scipy), or leave the crowns "
                              "output empty.") from exc
    if not settings.canopy_height_path:
        return None
    heights = HeightGrid(settings.canopy_height_path, window, gt, source.srs)
    stack.callback(heights.close)
    return heights


def decide(evidence: EvidenceAccumulator, settings: TreeSettings, progress: Progress) -> TreeStatistics:
    """The tree rule on the evidence, logged with its numbers; the statistics' tree section (no output counts)."""
    clusters = evidence.clusters()
    if settings.canopy_height_path and not any(c.height_pixels for c in clusters):
        progress.warning(f"The canopy height raster '{settings.canopy_height_path}' has no height under any valid "
                         "pixel (all NoData there): the clusters are decided without heights.")
    decisions = decide_trees(clusters, settings.min_tree_height, settings.tree_clusters)
    lines = []
    for cluster, decision in zip(clusters, decisions):
        verdict = "trees" if decision.is_tree else "not trees"
        lines.append(f"Cluster {cluster.label}: {verdict} ({decision.basis}: {decision.reason}). "
                     f"Evidence: {evidence_line(cluster)}.")
    progress.info("Which clusters are trees:\n" + "\n".join(lines))
    heights = settings.canopy_height_path
    trees = TreeStatistics(settings.min_tree_height, settings.nir_band, os.path.abspath(heights) if heights else None,
                           tuple(clusters), tuple(decisions))
    progress.info(f"Tree clusters: {', '.join(map(str, trees.tree_labels)) or 'none'}.")
    return trees


def write_mask(path: str, staging: Staging, labels_path: str, tree_labels: Sequence[int], progress: Progress) -> int:
    """TREES to ``path``, staged: the canopy mask of the finished labels; returns its canopy pixels."""
    try:
        canopy = write_tree_mask(labels_path, staging.path(path), tree_labels, progress)
    except OSError as exc:
        raise write_error(f"the tree canopy mask '{path}'", exc, os.path.dirname(os.path.abspath(path))) from exc
    progress.info(f"Tree canopy: {canopy} px.")
    return canopy


def write_crown_polygons(path: str, settings: TreeSettings, staging: Staging, labels_path: str,
                         tree_labels: Sequence[int], heights: Optional[HeightGrid], area: PixelArea, k: int,
                         progress: Progress) -> int:
    """CROWNS to ``path``, staged: the watershed crowns of the tree clusters; returns how many were written."""
    from ..trees.crowns import write_crowns  # scipy: imported only when crowns are asked for (checked in prepare)

    try:
        count = write_crowns(labels_path, staging.path(path), tree_labels, heights, area,
                             settings.min_tree_height, settings.min_crown_area, k, progress)
    except (OSError, RuntimeError) as exc:
        if progress.is_canceled():
            raise Canceled() from exc
        raise write_error(f"the crowns '{path}'", exc, os.path.dirname(os.path.abspath(path))) from exc
    how = "canopy height" if heights is not None else "distance to the canopy edge"
    progress.info(f"Wrote {count} crowns (watershed on the {how}; at least {settings.min_crown_area:g} m² each).")
    return count
