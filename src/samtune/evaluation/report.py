"""Evaluation outputs: ``per_case.csv``, ``summary.json`` and a printed table.

Files are written atomically (`samtune.atomic.atomic_path`: a temporary file in the same folder, then a rename)
so an interrupted run never leaves a half-written report. Per-case values are written
with full precision; ``inf`` / ``nan`` appear as those words (pandas reads them back).
``summary.json`` is strict JSON: statistics without a finite value are ``null``.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from samtune.atomic import atomic_path
from samtune.evaluation.accumulator import PER_CASE_COLUMNS
from samtune.evaluation.metrics import METRIC_NAMES

PER_CASE_FILE = "per_case.csv"
SUMMARY_FILE = "summary.json"

_HEADERS = {"dice": "Dice", "iou": "IoU", "hd95": "HD95", "nsd": "NSD"}


def write_per_case_csv(rows: Sequence[Mapping[str, object]], path: Path) -> None:
    """One line per (case, class), columns `PER_CASE_COLUMNS`."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(PER_CASE_COLUMNS), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: row[key] for key in PER_CASE_COLUMNS})
    with atomic_path(path) as tmp:
        tmp.write_text(buffer.getvalue(), encoding="utf-8", newline="")


def write_summary_json(
    summary: Mapping[str, object], path: Path, extra: Mapping[str, object] | None = None
) -> None:
    """The accumulator's summary (class keys become strings), plus ``extra`` entries."""
    document = {**summary, **(extra or {})}
    # allow_nan=False: a NaN/inf that slipped through is a bug, not "NaN" in the file.
    text = json.dumps(document, indent=2, allow_nan=False) + "\n"
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def _cell(stats: Mapping[str, object]) -> str:
    text = "-" if stats["mean"] is None else f"{stats['mean']:.3f} ± {stats['std']:.3f}"
    # Flag left-out values in the cell itself, so a mean over fewer cases is never read
    # as a mean over all of them.
    counts = (("n_inf", "inf"), ("n_nan", "nan"))
    left_out = [f"{stats[key]} {word}" for key, word in counts if stats[key]]
    return text + (f" (+{', '.join(left_out)})" if left_out else "")


def format_summary_table(summary: Mapping[str, Any]) -> str:
    """Mean ± std per class and metric, one line per class, then notes on counts."""
    unit = summary.get("distance_unit", "mm")
    tolerances = summary.get("nsd_tolerance", {})
    tol_values = sorted({t for t in tolerances.values() if t is not None})
    tol_text = "/".join(f"{t:g}" for t in tol_values)
    headers = {**_HEADERS, "hd95": f"HD95 ({unit})", "nsd": f"NSD@{tol_text}{unit}"}
    classes: Mapping[int, Mapping[str, Any]] = summary["classes"]
    lines = [["class", "cases", *(headers[m] for m in METRIC_NAMES)]]
    notes = []
    for label, entry in classes.items():
        title = f"{label} {entry['name']}".strip()
        lines.append([title, str(entry["n_cases"]), *(_cell(entry[m]) for m in METRIC_NAMES)])
        if entry["n_both_empty"] and summary.get("both_empty") == "perfect":
            notes.append(
                f"class {title}: {entry['n_both_empty']} of {entry['n_cases']} case(s) have it in "
                "neither mask and score as perfect (--both-empty nan leaves them out)"
            )
        for metric in METRIC_NAMES:
            stats = entry[metric]
            if stats["n_inf"]:
                notes.append(
                    f"class {title}: {stats['n_inf']} infinite {headers[metric]} value(s) "
                    "(one mask empty) left out of mean/median/std"
                )
            if stats["n_nan"]:
                notes.append(
                    f"class {title}: {stats['n_nan']} undefined {headers[metric]} value(s) "
                    "(both masks empty) left out"
                )
    if len(classes) > 1:
        macro = summary["mean_over_classes"]
        cells = ["-" if macro[m] is None else f"{macro[m]:.3f}" for m in METRIC_NAMES]
        lines.append(["mean of classes", "", *cells])
    widths = [max(len(row[i]) for row in lines) for i in range(len(lines[0]))]
    rendered = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in lines
    ]
    rendered.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(rendered + notes)
