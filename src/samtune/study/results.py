"""The study's results, read back from the cells' run directories: ``results.csv`` and
the per-strategy aggregates behind the markdown table and the plots.

Nothing is kept in memory between invocations: every figure comes from a file of a run
directory, so the table always equals the runs' own records.

Per cell (one row of ``results.csv``):

- ``<metric>_mean``: the mean over the scored cases, averaged over classes (the ``mean
  of classes`` of ``eval/summary.json``, as `samtune eval` prints it; for one class,
  that class's mean). Non-finite values (HD95 when one mask is empty) are left out and
  counted in ``hd95_n_inf``.
- ``<metric>_std``: the population standard deviation over cases of each case's mean
  over classes (finite values only).
- parameters, ``train_seconds`` (training wall time, validation included), ``steps``,
  ``best_val_dice`` and ``peak_rss_mb`` (the cell process's peak resident memory) from
  ``summary.json``; ``peak_gpu_mb`` when a GPU was used.
- ``status``: ``done``, ``failed`` (with ``error``; the traceback is in
  ``failures/<cell>.json``) or ``pending`` (not run yet, or interrupted).
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from samtune.atomic import atomic_path
from samtune.evaluation.metrics import METRIC_NAMES
from samtune.evaluation.report import SUMMARY_FILE as REPORT_SUMMARY
from samtune.study.grid import Cell
from samtune.runs.layout import RunLayout
from samtune.study.state import EVAL_DIR, PEAK_GPU_FILE, read_failure, run_dir

RESULT_COLUMNS = (
    "cell", "status", "strategy", "backbone", "model", "init", "setup", "component", "method", "dataset", "seed", "shots",
    "scored_on", "n_cases",
    *(f"{metric}_{stat}" for metric in METRIC_NAMES for stat in ("mean", "std")), "hd95_n_inf",
    "trainable_parameters", "total_parameters", "train_seconds", "steps", "best_val_dice", "peak_rss_mb",
    "peak_gpu_mb", "run_dir", "error",
)


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
    except (OSError, ValueError):
        return None


def case_stds(per_case_csv: Path) -> dict[str, float | None]:
    """Std over cases of each case's mean over classes, per metric (finite values)."""
    per_case: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    with open(per_case_csv, newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            for metric in METRIC_NAMES:
                value = float(row[metric])
                if math.isfinite(value):
                    per_case[row["case"]][metric].append(value)
    stds: dict[str, float | None] = {}
    for metric in METRIC_NAMES:
        means = [float(np.mean(values[metric])) for values in per_case.values() if values[metric]]
        stds[metric] = float(np.std(means)) if means else None
    return stds


def cell_row(out_dir: Path, cell: Cell) -> dict[str, Any]:
    """The ``results.csv`` row of one cell, from its files."""
    directory = run_dir(out_dir, cell)
    row: dict[str, Any] = {
        "cell": cell.cell_id, "strategy": cell.strategy, "backbone": cell.backbone, "model": cell.model,
        "init": cell.init, "setup": cell.setup, "component": cell.component, "method": cell.method, "dataset": cell.dataset,
        "seed": cell.seed, "shots": cell.shots if cell.shots is not None else "all", "scored_on": cell.scored_on,
        "run_dir": str(directory),
    }
    summary = _read_json(RunLayout(directory).summary_path)
    if summary:
        for key in ("trainable_parameters", "total_parameters", "train_seconds", "steps", "best_val_dice",
                    "peak_rss_mb"):
            row[key] = summary.get(key)
    gpu = _read_json(directory / PEAK_GPU_FILE)
    row["peak_gpu_mb"] = gpu.get("peak_gpu_mb") if gpu else None
    scored = _read_json(directory / EVAL_DIR / REPORT_SUMMARY)
    failure = read_failure(out_dir, cell)
    if failure:
        row["status"], row["error"] = "failed", f"{failure['stage']}: {failure['error']}"
    elif summary and scored:
        row["status"] = "done"
        row["n_cases"] = scored["n_cases"]
        stds = case_stds(directory / EVAL_DIR / "per_case.csv")
        for metric in METRIC_NAMES:
            row[f"{metric}_mean"] = scored["mean_over_classes"][metric]
            row[f"{metric}_std"] = stds[metric]
        row["hd95_n_inf"] = sum(entry["hd95"]["n_inf"] for entry in scored["classes"].values())
    else:
        row["status"] = "pending"
    return {column: row.get(column) for column in RESULT_COLUMNS}


def collect_rows(out_dir: Path, cells: list[Cell]) -> list[dict[str, Any]]:
    return [cell_row(out_dir, cell) for cell in cells]


def write_results_csv(rows: list[dict[str, Any]], path: Path) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(RESULT_COLUMNS), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: "" if value is None else value for key, value in row.items()})
    with atomic_path(path) as tmp:
        tmp.write_text(buffer.getvalue(), encoding="utf-8", newline="")


@dataclass
class Aggregate:
    """One strategy on one dataset at one few-shot size, over its seeds.

    ``std`` is over seeds when two or more seeds finished (``std_over="seeds"``; over
    cross-validation folds and seeds, ``"folds"``, for a dataset with folds), else
    the single run's std over cases (``std_over="cases"``).
    """

    strategy: str
    backbone: str
    component: str
    method: str
    dataset: str
    shots: int | None
    dice: float | None
    std: float | None
    std_over: str
    n_done: int
    n_failed: int
    n_planned: int
    trainable: int | None


def aggregate(cells: list[Cell], rows: list[dict[str, Any]]) -> list[Aggregate]:
    """Group the cells' rows by (strategy, dataset, shots), in grid order."""
    groups: dict[tuple, list[tuple[Cell, dict[str, Any]]]] = {}
    for cell, row in zip(cells, rows):
        groups.setdefault((cell.strategy, cell.dataset, cell.shots), []).append((cell, row))
    aggregates = []
    for (strategy, dataset, shots), members in groups.items():
        cell = members[0][0]
        done = [row for _, row in members if row["status"] == "done" and row["dice_mean"] is not None]
        dice = [row["dice_mean"] for row in done]
        std: float | None  # over seeds or folds, else the one run's over cases
        if len(dice) >= 2:
            std, std_over = float(np.std(dice)), "seeds" if cell.fold is None else "folds"
        else:
            std, std_over = (done[0]["dice_std"] if done else None), "cases"
        trainable = next((row["trainable_parameters"] for _, row in members if row["trainable_parameters"]), None)
        aggregates.append(Aggregate(
            strategy, cell.backbone if not cell.init else f"{cell.backbone}@{cell.init}", cell.component, cell.method,
            dataset, shots, float(np.mean(dice)) if dice else None, std, std_over, len(done),
            sum(row["status"] == "failed" for _, row in members), len(members), trainable,
        ))
    return aggregates
