"""Classify from Examples' statistics file: JSON (the result's ``stats``), CSV or HTML, by extension, written by
the report writer Segment Trees' statistics use (engine/runs/report.py: write_report).

The CSV holds tables separated by one empty line: ``class_id,name,color,pixels,percent,examples,
example_patches,precision,recall,f1``; then (with cross-validation) ``overall_accuracy,scheme,folds`` and the
confusion matrix (rows: the examples' class, columns: the predicted class). The HTML is self-contained; every
text is escaped.
"""

from __future__ import annotations

import csv
import html
import io
from typing import Any, Dict, List

from .report import fmt, html_head, html_table, write_report

GROUPED = ("The accuracy is cross-validated by example: each fold leaves out whole polygons (or points) and predicts "
           "them with a classifier fitted on the others, never single pixels, whose neighbours would be in the fit.")


def _metric(row: Dict[str, Any], name: str) -> str:
    value = row.get(name)
    return "" if value is None else f"{value:.4f}"


def class_rows(stats: Dict[str, Any]) -> List[List[Any]]:
    """Rows ``[class_id, name, color, pixels, percent, examples, example_patches, precision, recall, f1]``."""
    accuracy = stats["accuracy"] or {"per_class": []}
    scores = {row["class"]: row for row in accuracy["per_class"]}
    rows = []
    for entry in stats["classes"]:
        score = scores.get(entry["name"], {})
        rows.append([entry["class_id"], entry["name"], entry["color"], entry["pixels"], f"{entry['percent']:.4f}",
                     entry["examples"], entry["example_patches"], _metric(score, "precision"),
                     _metric(score, "recall"), _metric(score, "f1")])
    return rows


def csv_text(stats: Dict[str, Any]) -> str:
    """The class table, the accuracy and the confusion matrix as CSV."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["class_id", "name", "color", "pixels", "percent", "examples", "example_patches", "precision",
                     "recall", "f1"])
    writer.writerows(class_rows(stats))
    accuracy = stats["accuracy"]
    if accuracy:
        writer.writerow([])
        writer.writerow(["overall_accuracy", "scheme", "folds"])
        writer.writerow([f"{accuracy['overall_accuracy']:.6f}", accuracy["scheme"], accuracy["folds"]])
        writer.writerow([])
        names = [row["class"] for row in accuracy["per_class"]]
        writer.writerow(["examples \\ predicted", *names])
        for name, counts in zip(names, accuracy["confusion"]):
            writer.writerow([name, *counts])
    return out.getvalue()


def _accuracy_html(accuracy: Dict[str, Any]) -> List[str]:
    e = html.escape
    names = [row["class"] for row in accuracy["per_class"]]
    overall = accuracy["overall_accuracy"]
    matrix = [[e(name), *(str(count) for count in counts)] for name, counts in zip(names, accuracy["confusion"])]
    return ["<h2>Accuracy</h2>",
            f"<p>{e(GROUPED)} Scheme: {e(accuracy['scheme'])}, {accuracy['folds']} folds. Overall accuracy: "
            f"<b>{e(f'{100 * overall:.1f} %')}</b> of the example patches.</p>",
            "<h3>Confusion matrix</h3><p>Rows: the examples' class; columns: the predicted class (patches).</p>",
            html_table(["examples \\ predicted", *names], matrix)]


def html_text(stats: Dict[str, Any]) -> str:
    """A self-contained HTML report."""
    e = html.escape
    encoding, classifier = stats["encoding"], stats["classifier"]
    summary = [["Input", e(stats["input"]["path"])], ["Output", e(stats["output"])],
               ["Mode", e(stats["mode"])], ["Model", e(f"{stats['model']['variant']} ({stats['model']['weights']})")],
               ["Device / precision", e(f"{encoding['device']} / {encoding['precision']}")],
               ["Stride / tile / overlap", e(f"{encoding['stride']} / {encoding['tile_size']} / "
                                             f"{encoding['overlap']} px")],
               *([["Classifier applied", e(classifier["applied"])]] if classifier["applied"] else []),
               *([["Classifier saved", e(classifier["saved"])]] if classifier["saved"] else [])]
    classes = [[str(row[0]), f'<span class="sw" style="background:{row[2]}"></span> {e(row[1])}',
                *(e(fmt(v)) for v in row[3:])] for row in class_rows(stats)]
    warnings = [f"<li>{e(text)}</li>" for text in stats["warnings"]]
    return "\n".join([
        *html_head("TreeSeg classification report"), html_table(["", ""], summary), "<h2>Classes</h2>",
        html_table(["Class", "Name", "Pixels", "Share (%)", "Examples", "Example patches", "Precision", "Recall",
                    "F1"], classes),
        *(_accuracy_html(stats["accuracy"]) if stats["accuracy"] else []),
        *(["<h2>Warnings</h2>", f"<ul>{''.join(warnings)}</ul>"] if warnings else []),
        "</body></html>", ""])


def write_classify_stats(path: str, stats: Dict[str, Any]) -> None:
    """Write ``stats`` to ``path`` as JSON, CSV or HTML, by extension."""
    write_report(path, lambda: stats, lambda: csv_text(stats), lambda: html_text(stats))
