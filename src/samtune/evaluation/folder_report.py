"""`samtune eval --pred DIR --gt DIR` as one library call: match and score two folders of
label files and write ``per_case.csv`` and ``summary.json``.

`score_folders` checks the report files are free before anything is read, scores every
matched case (`samtune.evaluation.folders`), writes the reports (with the folders, label
maps, unmatched names and any binary rule recorded in ``summary.json``) and returns what
to show: the summary table, a note when a binary label rule was applied, and one warning
per kind of unmatched entry.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from samtune.evaluation.accumulator import MetricAccumulator
from samtune.evaluation.evaluate import report_paths, write_report
from samtune.evaluation.folders import FolderMatch, evaluate_folders
from samtune.evaluation.metrics import BothEmpty

SHOWN_NAMES = 10  # unmatched names listed in a warning; the rest are counted


@dataclass
class FolderReport:
    """What `score_folders` wrote and what the command shows.

    ``note``: the binary label rule applied (None when the labels agreed as they are);
    ``warnings``: one line per kind of unmatched entry (not scored).
    """

    accumulator: MetricAccumulator
    match: FolderMatch
    table: str
    per_case_path: Path
    summary_path: Path
    note: str | None = None
    warnings: list[str] = field(default_factory=list)


def _show_names(names: list[str]) -> str:
    shown = ", ".join(names[:SHOWN_NAMES])
    hidden = len(names) - SHOWN_NAMES
    return shown + (f" ... and {hidden} more" if hidden > 0 else "")


def score_folders(
    pred_dir: Path,
    gt_dir: Path,
    out_dir: Path,
    classes: Sequence[int] | None = None,
    class_names: Mapping[int, str] | None = None,
    nsd_tolerance: float = 2.0,
    both_empty: BothEmpty = "perfect",
    label_spec: str | None = None,
    pred_label_spec: str | None = None,
    overwrite: bool = False,
) -> FolderReport:
    """Score the label files of `pred_dir` against those of `gt_dir` into `out_dir`.

    ``label_spec`` / ``pred_label_spec``: stored values -> classes 1..K of the ground
    truth / predictions (`samtune.data.labels.parse_label_spec`, e.g. 'binary');
    ``nsd_tolerance`` in mm (pixels for PNG).
    """
    from samtune.data.labels import parse_label_spec
    from samtune.outputs import check_outputs_in

    label_map = parse_label_spec(label_spec) if label_spec else None
    pred_label_map = parse_label_spec(pred_label_spec) if pred_label_spec else None
    check_outputs_in(out_dir, [path.name for path in report_paths(out_dir)], overwrite)
    accumulator, match = evaluate_folders(
        pred_dir, gt_dir, classes=classes, nsd_tolerance=nsd_tolerance, both_empty=both_empty,
        class_names=class_names, label_map=label_map, pred_label_map=pred_label_map,
    )
    extra = {
        "pred_dir": str(pred_dir),
        "gt_dir": str(gt_dir),
        "label_map": label_map.describe() if label_map else None,
        "pred_label_map": pred_label_map.describe() if pred_label_map else None,
        "unmatched": match.report(),
        "label_rule": match.label_rule,
    }
    table = write_report(accumulator, out_dir, extra)
    warnings = [
        f"{len(listed)} {what}, not scored: {_show_names(listed)}"
        for listed, what in (
            (match.ground_truth_only, f"ground-truth case(s) without a prediction in {pred_dir}"),
            (match.prediction_only, f"prediction(s) without a ground truth in {gt_dir}"),
            (match.skipped, "entries skipped (not image files)"),
        )
        if listed
    ]
    per_case_path, summary_path = report_paths(out_dir)
    return FolderReport(accumulator, match, table, per_case_path, summary_path, match.label_rule, warnings)
