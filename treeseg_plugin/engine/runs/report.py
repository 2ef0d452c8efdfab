"""The statistics file, written from a run's typed statistics (engine/runs/statistics.py): JSON (their
``to_json``), CSV (WCSS and cluster tables) or HTML (the tables and an inline-SVG elbow chart), chosen by the
file extension.

The CSV holds tables separated by one empty line: ``k,wcss,drop_percent,chosen``, then
``label,name,color,pixels,percent,area_map_units,area_hectares``, then (when the tree rule ran) the
evidence per cluster, ``label,``:data:`EVIDENCE_COLUMNS` (the rule's decision, its branch and reason, and
the evidence of engine/trees/evidence.py; empty where not available). The HTML is self-contained (no
scripts, no external resources); every text is escaped. The stats never contain the access token.
"""

from __future__ import annotations

import csv
import html
import io
import json
import os
from typing import Any, Callable, Dict, List

from .statistics import SegmentationStatistics


def fmt(value: Any, digits: int = 6) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


EVIDENCE_COLUMNS = ("is_tree", "basis", "reason", "mean_r", "mean_g", "mean_b", "exg", "vari", "ndvi",
                    "height_mean", "height_median", "height_p90", "height_max")


def evidence_rows(stats: SegmentationStatistics) -> List[List[Any]]:
    """Rows ``[label, *EVIDENCE_COLUMNS]`` (none when the tree rule saw no cluster)."""
    clusters = stats.trees.cluster_json()
    return [[int(key), *(clusters[key].get(column) for column in EVIDENCE_COLUMNS)]
            for key in sorted(clusters, key=int)]


def wcss_rows(stats: SegmentationStatistics) -> List[List[Any]]:
    """Rows ``[k, wcss, drop_percent, chosen]`` sorted by K."""
    choice = stats.k
    return [[k, float(w), choice.finite_drop(k), k == choice.chosen_k] for k, w in sorted(choice.wcss.items())]


def cluster_rows(stats: SegmentationStatistics) -> List[List[Any]]:
    """Rows ``[label, name, color, pixels, percent, area_map_units, area_hectares]``."""
    counts, legend = stats.counts, stats.legend
    total = counts.valid or 1
    rows = []
    for label in stats.labels:
        area = counts.area(label)
        rows.append([label, legend.names[label], legend.colors[label - 1], counts.pixels[label],
                     100.0 * counts.pixels[label] / total, area["map_units"], area["hectares"]])
    return rows


def csv_text(stats: SegmentationStatistics) -> str:
    """The WCSS table and the cluster table as CSV."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["k", "wcss", "drop_percent", "chosen"])
    for k, w, drop, chosen in wcss_rows(stats):
        writer.writerow([k, repr(w), "" if drop is None else f"{drop:.4f}", "yes" if chosen else "no"])
    writer.writerow([])
    writer.writerow(["label", "name", "color", "pixels", "percent", "area_map_units", "area_hectares"])
    for label, name, color, count, pct, map_units, hectares in cluster_rows(stats):
        writer.writerow([label, name, color, count, f"{pct:.4f}", repr(map_units),
                         "" if hectares is None else repr(hectares)])
    evidence = evidence_rows(stats)
    if evidence:
        writer.writerow([])
        writer.writerow(["label", *EVIDENCE_COLUMNS])
        for row in evidence:
            writer.writerow(["" if v is None else ("yes" if v else "no") if isinstance(v, bool) else
                             repr(v) if isinstance(v, float) else v for v in row])
    return out.getvalue()


def elbow_svg(stats: SegmentationStatistics, width: int = 480, height: int = 280) -> str:
    """An SVG line chart of WCSS against K, the chosen K marked."""
    rows = wcss_rows(stats)
    left, right, top, bottom = 70, 20, 20, 45
    ks = [r[0] for r in rows]
    ws = [r[1] for r in rows]
    k_lo, k_hi = min(ks), max(ks)
    w_lo, w_hi = min(0.0, min(ws)), max(ws) or 1.0

    def x(k: float) -> float:
        return left + (width - left - right) * ((k - k_lo) / (k_hi - k_lo) if k_hi > k_lo else 0.5)

    def y(w: float) -> float:
        return top + (height - top - bottom) * (1 - (w - w_lo) / ((w_hi - w_lo) or 1.0))

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img" aria-label="Elbow chart: WCSS against K">',
             f'<line x1="{left}" y1="{height - bottom}" x2="{width - right}" y2="{height - bottom}" stroke="#444"/>',
             f'<line x1="{left}" y1="{top}" x2="{left}" y2="{height - bottom}" stroke="#444"/>']
    for k in ks:
        parts.append(f'<text x="{x(k):.1f}" y="{height - bottom + 16}" text-anchor="middle" '
                     f'font-size="11">{k}</text>')
    for w in (w_lo, (w_lo + w_hi) / 2, w_hi):
        parts.append(f'<text x="{left - 6}" y="{y(w) + 4:.1f}" text-anchor="end" font-size="11">'
                     f'{html.escape(fmt(w, 4))}</text>')
    parts.append(f'<text x="{(left + width - right) / 2:.1f}" y="{height - 8}" text-anchor="middle" '
                 'font-size="12">K (clusters)</text>')
    parts.append(f'<text x="14" y="{(top + height - bottom) / 2:.1f}" text-anchor="middle" font-size="12" '
                 f'transform="rotate(-90 14 {(top + height - bottom) / 2:.1f})">WCSS</text>')
    points = " ".join(f"{x(k):.1f},{y(w):.1f}" for k, w in zip(ks, ws))
    parts.append(f'<polyline points="{points}" fill="none" stroke="#0072B2" stroke-width="2"/>')
    for k, w, _, chosen in rows:
        fill = "#D55E00" if chosen else "#0072B2"
        radius = 6 if chosen else 3.5
        parts.append(f'<circle cx="{x(k):.1f}" cy="{y(w):.1f}" r="{radius}" fill="{fill}">'
                     f'<title>K={k}: WCSS {html.escape(fmt(w))}</title></circle>')
    parts.append("</svg>")
    return "\n".join(parts)


def html_table(header: List[str], rows: List[List[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def html_head(title: str) -> List[str]:
    """The report's first lines: the document head with its style, and the title as a heading."""
    style = ("body{font-family:sans-serif;margin:1.5em}table{border-collapse:collapse;margin:1em 0}"
             "td,th{border:1px solid #bbb;padding:3px 8px;text-align:right}th{background:#eee}"
             "td:first-child{text-align:left}.sw{display:inline-block;width:1em;height:1em;"
             "vertical-align:middle;border:1px solid #555}")
    return ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">', f"<title>{html.escape(title)}</title>",
            f"<style>{style}</style></head><body>", f"<h1>{html.escape(title)}</h1>"]


def html_text(stats: SegmentationStatistics) -> str:
    """A self-contained HTML report."""
    e = html.escape
    encoding = stats.encoding
    summary = [
        ["Input", e(str(stats.input.path))],
        ["Output", e(str(stats.output))],
        ["Chosen K", e(f"{stats.k.chosen_k} ({stats.k.k_mode})")],
        ["Model", e(f"{stats.model.variant} ({stats.model.weights_path})")],
        ["Device / precision", e(f"{encoding.device} / {encoding.precision}")],
        ["Stride / tile / overlap", e(f"{encoding.stride} / {encoding.tile_size} / {encoding.overlap} px")],
        *([["Working resolution", e(f"{encoding.working_resolution:g} m: {encoding.encoded_size[0]} x "
                                    f"{encoding.encoded_size[1]} px encoded")]] if encoding.working_resolution else []),
        ["Tiles (skipped)", e(f"{stats.tiles.total} ({stats.tiles.skipped})")],
        ["Areas", e(str(stats.counts.area_note))],
        *_cluster_model_rows(stats),
    ]
    wcss = [[str(k), e(fmt(w)), "" if d is None else e(f"{d:.2f} %"), "&#10003;" if c else ""]
            for k, w, d, c in wcss_rows(stats)]
    clusters = [[str(label), f'<span class="sw" style="background:{color}"></span> {e(name)}', str(count),
                 e(f"{pct:.2f} %"), e(fmt(mu)), "" if ha is None else e(f"{ha:.4f}")]
                for label, name, color, count, pct, mu, ha in cluster_rows(stats)]
    return "\n".join([
        *html_head("TreeSeg segmentation report"), html_table(["", ""], summary),
        "<h2>Elbow (within-cluster sum of squares)</h2>", elbow_svg(stats),
        html_table(["K", "WCSS", "Drop to K+1", "Chosen"], wcss),
        "<h2>Clusters</h2>",
        html_table(["Label", "Name", "Pixels", "Share", "Area (map units²)", "Area (ha)"], clusters),
        *_trees_html(stats),
        "</body></html>", ""])


def _cluster_model_rows(stats: SegmentationStatistics) -> List[List[str]]:
    """Summary rows for the cluster model applied (its file name and checksum prefix) and saved (its path)."""
    model = stats.cluster_model
    rows = []
    if model.applied:
        checksum = model.applied_sha256
        rows.append(["Cluster model applied", html.escape(
            os.path.basename(model.applied) + (f" (checksum {checksum[:12]}…)" if checksum else ""))])
    if model.saved:
        rows.append(["Cluster model saved", html.escape(str(model.saved))])
    return rows


def _trees_html(stats: SegmentationStatistics) -> List[str]:
    """The evidence table and the tree decisions (nothing when the tree rule saw no cluster)."""
    rows = evidence_rows(stats)
    if not rows:
        return []
    cells = [[str(row[0]), "trees" if row[1] else "not trees", *(html.escape(fmt(v, 4)) for v in row[2:])]
             for row in rows]
    header = ["Label", "Decision", "Branch", "Why", "R", "G", "B", "ExG", "VARI", "NDVI", "Height mean (m)",
              "Median (m)", "P90 (m)", "Max (m)"]
    return ["<h2>Which clusters are trees</h2>", html_table(header, cells)]


def write_stats(path: str, stats: SegmentationStatistics) -> None:
    """Write ``stats`` to ``path`` as JSON, CSV or HTML, by extension."""
    write_report(path, stats.to_json, lambda: csv_text(stats), lambda: html_text(stats))


def write_report(path: str, as_json: Callable[[], Dict[str, Any]], as_csv: Callable[[], str],
                 as_html: Callable[[], str]) -> None:
    """Write a report to ``path``: ``as_json()`` (as JSON), ``as_csv()`` or ``as_html()``, by extension."""
    ext = os.path.splitext(path)[1].lower()
    if ext == ".json":
        text = json.dumps(as_json(), indent=2, allow_nan=False) + "\n"
    elif ext == ".csv":
        text = as_csv()
    else:
        text = as_html()
    with open(path, "w", encoding="utf-8", newline="") as handle:
        handle.write(text)
