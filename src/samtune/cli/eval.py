"""`samtune eval`: Dice, IoU, HD95 and NSD per case and class, written to a folder.

    samtune eval --pred preds/ --gt labelsTr/ --out eval/ [--classes 1=tz 2=pz]
                 [--nsd-tolerance 2] [--label-map 254=1 255=2]

Writes ``per_case.csv`` and ``summary.json`` into ``--out`` and prints a summary table.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from samtune.errors import UserError

_SHOWN_NAMES = 10


def parse_classes(items: list[str] | None) -> tuple[list[int] | None, dict[int, str]]:
    """['1', '2=pz'] -> ([1, 2], {2: 'pz'})."""
    if not items:
        return None, {}
    classes, names = [], {}
    for item in items:
        label, _, name = item.partition("=")
        try:
            value = int(label)
        except ValueError:
            raise UserError(f"--classes: '{item}' is not LABEL or LABEL=NAME (e.g. 1 or 1=liver)") from None
        if value <= 0:
            raise UserError(f"--classes: label {value} must be a positive integer (0 is background)")
        if value in classes:
            raise UserError(f"--classes: label {value} is given twice")
        classes.append(value)
        if name:
            names[value] = name
    return classes, names


def parse_label_map(items: list[str] | None, flag: str) -> dict[int, int] | None:
    """['254=1', '255=2'] or ['254,255=1'] -> {254: 1, 255: 2} / {254: 1, 255: 1}."""
    if not items:
        return None
    mapping: dict[int, int] = {}
    for item in items:
        stored, sep, target = item.partition("=")
        try:
            if not sep:
                raise ValueError
            values = [int(v) for v in stored.split(",")]
            label = int(target)
        except ValueError:
            raise UserError(
                f"{flag}: '{item}' is not VALUE=CLASS or VALUE,VALUE=CLASS (e.g. 255=1)"
            ) from None
        for value in values:
            if value in mapping and mapping[value] != label:
                raise UserError(f"{flag}: value {value} is mapped to both {mapping[value]} and {label}")
            mapping[value] = label
    return mapping


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "eval",
        help="score predictions against ground truth (Dice, IoU, HD95, NSD)",
        description=(
            "Score prediction label files against ground-truth label files matched by name "
            "(case_01.nii.gz <-> case_01.png...). Metrics per case and class, using the ground "
            "truth's spacing; writes per_case.csv and summary.json into --out."
        ),
    )
    parser.add_argument("--pred", type=Path, metavar="DIR", help="folder of predicted label files")
    parser.add_argument("--gt", type=Path, metavar="DIR", help="folder of ground-truth label files")
    parser.add_argument("--out", type=Path, metavar="DIR", required=True, help="folder for the reports")
    parser.add_argument(
        "--classes", nargs="+", metavar="LABEL[=NAME]",
        help="class labels to score, optionally named (default: every non-zero label found)",
    )
    parser.add_argument(
        "--nsd-tolerance", type=float, default=2.0, metavar="MM",
        help="normalised surface Dice tolerance in mm (pixels for PNG) (default: 2)",
    )
    parser.add_argument(
        "--label-map", nargs="+", metavar="VALUE=CLASS",
        help="map stored ground-truth values to classes, e.g. 254=1 255=2, or 254,255=1",
    )
    parser.add_argument(
        "--pred-label-map", nargs="+", metavar="VALUE=CLASS",
        help="the same for the predictions (e.g. 255=1 for 0/255 PNG masks)",
    )
    parser.add_argument(
        "--both-empty", choices=("perfect", "nan"), default="perfect",
        help="a class absent from both prediction and ground truth scores Dice/IoU/NSD 1 and "
        "HD95 0 ('perfect', default), or is left out and counted ('nan', as nnU-Net)",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace existing reports in --out")
    parser.set_defaults(func=run)


def _show_names(names: list[str]) -> str:
    shown = ", ".join(names[:_SHOWN_NAMES])
    return shown + (f" ... and {len(names) - _SHOWN_NAMES} more" if len(names) > _SHOWN_NAMES else "")


def run(args: argparse.Namespace) -> int:
    if args.pred is None or args.gt is None:
        raise UserError("give both --pred DIR and --gt DIR (folders of label files matched by name)")
    if not (math.isfinite(args.nsd_tolerance) and args.nsd_tolerance >= 0):
        raise UserError(f"--nsd-tolerance must be a finite number >= 0, got {args.nsd_tolerance}")
    classes, names = parse_classes(args.classes)
    label_map = parse_label_map(args.label_map, "--label-map")
    pred_label_map = parse_label_map(args.pred_label_map, "--pred-label-map")

    from samtune.evaluation.evaluate import report_paths, write_report
    from samtune.evaluation.folders import evaluate_folders

    existing = [path for path in report_paths(args.out) if path.exists()]
    if existing and not args.overwrite:
        raise UserError(f"{existing[0]} already exists; choose another --out or pass --overwrite")

    accumulator, match = evaluate_folders(
        args.pred,
        args.gt,
        classes=classes,
        nsd_tolerance=args.nsd_tolerance,
        both_empty=args.both_empty,
        class_names=names,
        label_map=label_map,
        pred_label_map=pred_label_map,
    )
    extra = {
        "pred_dir": str(args.pred),
        "gt_dir": str(args.gt),
        "label_map": {str(k): v for k, v in (label_map or {}).items()},
        "pred_label_map": {str(k): v for k, v in (pred_label_map or {}).items()},
        "unmatched": match.report(),
    }
    table = write_report(accumulator, args.out, extra)
    print(table)
    for listed, what in (
        (match.ground_truth_only, f"ground-truth case(s) without a prediction in {args.pred}"),
        (match.prediction_only, f"prediction(s) without a ground truth in {args.gt}"),
        (match.skipped, "entries skipped (not image files)"),
    ):
        if listed:
            print(f"samtune: warning: {len(listed)} {what}, not scored: {_show_names(listed)}", file=sys.stderr)
    per_case_path, summary_path = report_paths(args.out)
    print(f"{len(accumulator)} cases scored; wrote {per_case_path} and {summary_path}")
    return 0
