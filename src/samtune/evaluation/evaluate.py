"""Evaluate many cases held in memory and write the report files.

This is the entry point for any caller that already has label arrays: `samtune eval
--pred/--gt` (through `samtune.evaluation.folders`) and the evaluation of a trained run,
which predicts each case and streams it in here.

    >>> cases = (EvalCase(name, predict(image), labels, geometry.array_spacing) for ...)
    >>> accumulator = evaluate_cases(cases, classes=[1, 2], nsd_tolerance=2.0)
    >>> print(write_report(accumulator, out_dir))
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from samtune.evaluation.accumulator import MetricAccumulator
from samtune.evaluation.metrics import DEFAULT_NSD_TOLERANCE_MM, BothEmpty
from samtune.evaluation.report import (
    PER_CASE_FILE,
    SUMMARY_FILE,
    format_summary_table,
    write_per_case_csv,
    write_summary_json,
)


@dataclass(frozen=True)
class EvalCase:
    """One case: label maps of one shape ([y, x] or [z, y, x]) and spacing per array axis.

    ``spacing`` is in array-axis order (``Geometry.array_spacing``), in mm; None = 1.
    """

    case_id: str
    pred_labels: np.ndarray
    gt_labels: np.ndarray
    spacing: Sequence[float] | None = None


def evaluate_cases(
    cases: Iterable[EvalCase],
    classes: Sequence[int] | None = None,
    nsd_tolerance: float | Mapping[int, float] = DEFAULT_NSD_TOLERANCE_MM,
    both_empty: BothEmpty = "perfect",
    class_names: Mapping[int, str] | None = None,
    distance_unit: str = "mm",
) -> MetricAccumulator:
    """Score every case (consumed one at a time, so a generator keeps memory bounded).

    ``classes`` None scores the non-zero labels present, per the accumulator's rules.
    """
    accumulator = MetricAccumulator(
        nsd_tolerance=nsd_tolerance,
        both_empty=both_empty,
        class_names=class_names,
        distance_unit=distance_unit,
    )
    for case in cases:
        accumulator.add(case.case_id, case.pred_labels, case.gt_labels, case.spacing, classes)
    return accumulator


def report_paths(out_dir: Path) -> tuple[Path, Path]:
    """(per_case.csv, summary.json) inside ``out_dir``."""
    out_dir = Path(out_dir)
    return out_dir / PER_CASE_FILE, out_dir / SUMMARY_FILE


def write_report(
    accumulator: MetricAccumulator, out_dir: Path, extra: Mapping[str, object] | None = None
) -> str:
    """Write ``per_case.csv`` and ``summary.json`` (plus ``extra``) into ``out_dir``.

    Returns the summary table as text, for printing.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    per_case_path, summary_path = report_paths(out_dir)
    summary = accumulator.summary()
    write_per_case_csv(accumulator.per_case_rows(), per_case_path)
    write_summary_json(summary, summary_path, extra)
    return format_summary_table(summary)
