"""The per-class report of a test: ``test_report.csv`` (precision, recall, F1 and support of each
class, then the macro and, for multi-label data, micro averages) and ``confusion_matrix.png``, or the
rows a task's report carries itself (a tagger's entity types, then their micro average)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from seqclf.atomic import write_atomic
from seqclf.runs import plots

REPORT_FILE = "test_report.csv"
MATRIX_FILE = "confusion_matrix.png"


def rows(report: dict) -> list[dict]:
    """One row per class, then ``macro avg`` (the unweighted mean over classes) and, for multi-label
    data, ``micro avg`` (from the summed counts); a report that carries its own ``rows`` (a tagger's:
    one per entity type, then their micro average) gives those."""
    if "rows" in report:
        return list(report["rows"])
    out = [
        {"label": name, "precision": p, "recall": r, "f1": f, "support": int(n)}
        for name, p, r, f, n in zip(
            report["labels"], report["precision"], report["recall"], report["f1"], report["support"], strict=True
        )
    ]
    count = len(out)
    macro = {k: sum(row[k] for row in out) / count for k in ("precision", "recall", "f1")}
    out.append({"label": "macro avg", **macro, "support": sum(row["support"] for row in out)})
    if "micro" in report:
        out.append({"label": "micro avg", **report["micro"], "support": out[-1]["support"]})
    return out


def write(folder: str | Path, report: dict, prefix: str = "") -> list[Path]:
    """Write the report's CSV and confusion matrix picture into ``folder``; return their paths."""
    folder = Path(folder)
    table = io.StringIO()
    writer = csv.DictWriter(table, fieldnames=["label", "precision", "recall", "f1", "support"], lineterminator="\n")
    writer.writeheader()
    for row in rows(report):
        writer.writerow({k: f"{v:.4f}" if isinstance(v, float) else v for k, v in row.items()})
    report_path, matrix_path = folder / f"{prefix}{REPORT_FILE}", folder / f"{prefix}{MATRIX_FILE}"
    write_atomic(report_path, lambda f: f.write(table.getvalue().encode("utf-8")))
    if "confusion" not in report:  # a report without classes to confuse (a tagger's)
        return [report_path]
    plots.confusion_matrix(
        report["confusion"],
        report["labels"],
        "test: confusion matrix (rows sum to 1)" if not report.get("multi_label") else "test: true vs predicted labels",
        support=report["support"] if report.get("multi_label") else None,
        path=matrix_path,
    )
    return [report_path, matrix_path]
