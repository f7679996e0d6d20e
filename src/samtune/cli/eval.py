"""`samtune eval`: Dice, IoU, HD95 and NSD per case and class, written to a folder.

    samtune eval --pred preds/ --gt labelsTr/ --out eval/ [--classes 1=tz 2=pz]
                 [--nsd-tolerance 2] [--label-map central=254,peripheral=255]
    samtune eval --run runs/prostate [--data SOURCE] [--split val] --out eval/

The first form scores existing prediction files; the second predicts every case of a
labelled source with a trained run first (`samtune.inference.run_eval`; prompted runs
get their prompts from the ground truth). Writes ``per_case.csv`` and ``summary.json``
into ``--out`` and prints a summary table.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from samtune.errors import UserError

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
            raise UserError(
                f"--classes: '{item}' is not LABEL or LABEL=NAME (e.g. 1 or 1=liver)"
            ) from None
        if value <= 0:
            raise UserError(
                f"--classes: label {value} must be a positive integer (0 is background)"
            )
        if value in classes:
            raise UserError(f"--classes: label {value} is given twice")
        classes.append(value)
        if name:
            names[value] = name
    return classes, names


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "eval",
        help="score predictions against ground truth (Dice, IoU, HD95, NSD)",
        description=(
            "Score prediction label files against ground-truth label files matched by name "
            "(case_01.nii.gz <-> case_01.png...), or (--run) predict every case of a labelled "
            "source with a trained run and score it. Metrics per case and class, using the "
            "ground truth's spacing; writes per_case.csv and summary.json into --out. With "
            "--run, prompted runs are prompted from the ground truth: per slice and class, a "
            "tight box of the class (box runs) or 5 seeded points from its innermost 10% "
            "(point runs); slices without the class get no prompt."
        ),
    )
    parser.add_argument("--pred", type=Path, metavar="DIR", help="folder of predicted label files")
    parser.add_argument("--gt", type=Path, metavar="DIR", help="folder of ground-truth label files")
    parser.add_argument("--run", type=Path, metavar="RUN_DIR", action="append",
                        help="a training run to predict with (instead of --pred/--gt); repeat it for an ensemble")
    parser.add_argument("--tta", choices=("flips",), help="with --run: test-time augmentation (mirrored inputs averaged)")
    parser.add_argument("--strategy", metavar="NAME",
                        help="with --run STUDY_OUT: every finished fold/seed run of this strategy (results.md row)")
    parser.add_argument("--dataset", metavar="NAME", help="with --run STUDY_OUT --strategy: the study's dataset")
    parser.add_argument(
        "--data", metavar="SOURCE",
        help="with --run: labelled cases (list file, nnU-Net folder, images/+masks/ folder, or a split "
        "folder from `samtune data split`); default: the run's own validation data",
    )
    parser.add_argument(
        "--split", choices=("train", "val"),
        help="with --run: which list of a split folder (or of the run's own data) to use (default val)",
    )
    parser.add_argument("--batch-size", type=int, metavar="N",
                        help="with --run: slices per forward (default 1 on the CPU, 8 on CUDA)")
    parser.add_argument("--device", default="cpu", help="with --run: cpu or cuda (default cpu)")
    from samtune.cli.backend_args import add_backend_arguments

    add_backend_arguments(parser, prefix="with --run: ")
    parser.add_argument(
        "--out", type=Path, metavar="DIR", required=True, help="folder for the reports"
    )
    parser.add_argument(
        "--classes", nargs="+", metavar="LABEL[=NAME]",
        help="class labels to score, optionally named (default: every non-zero label found)",
    )
    parser.add_argument(
        "--nsd-tolerance", type=float, default=2.0, metavar="MM",
        help="normalised surface Dice tolerance in mm (pixels for PNG) (default: 2)",
    )
    parser.add_argument(
        "--label-map", metavar="SPEC",
        help="stored ground-truth values -> classes 1..K, named: 'central=254,peripheral=255', "
        "'gland=254+255', or 'binary' (every non-zero value is class 1)",
    )
    parser.add_argument(
        "--pred-label-map", metavar="SPEC",
        help="the same for the predictions, e.g. 'binary' for 0/255 PNG masks (samtune's own "
        "predictions already hold classes 1..K)",
    )
    parser.add_argument(
        "--both-empty", choices=("perfect", "nan"), default="perfect",
        help="a class absent from both prediction and ground truth scores Dice/IoU/NSD 1 and "
        "HD95 0 ('perfect', default), or is left out and counted ('nan', as nnU-Net)",
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="replace existing reports in --out"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if not (math.isfinite(args.nsd_tolerance) and args.nsd_tolerance >= 0):
        raise UserError(f"--nsd-tolerance must be a finite number >= 0, got {args.nsd_tolerance}")
    if args.run is not None:
        return run_with_model(args)
    if args.tta:
        raise UserError("--tta goes with --run RUN_DIR (predictions are made, then scored)")
    if args.data is not None or args.split is not None:
        raise UserError("--data and --split go with --run RUN_DIR; to score prediction files use --pred and --gt")
    if args.pred is None or args.gt is None:
        raise UserError(
            "give both --pred DIR and --gt DIR (folders of label files matched by name), "
            "or --run RUN_DIR to predict and score a data source"
        )
    classes, names = parse_classes(args.classes)

    from samtune.evaluation.folder_report import score_folders

    report = score_folders(
        args.pred, args.gt, args.out, classes=classes, class_names=names, nsd_tolerance=args.nsd_tolerance,
        both_empty=args.both_empty, label_spec=args.label_map, pred_label_spec=args.pred_label_map,
        overwrite=args.overwrite,
    )
    if report.note:
        print(f"samtune: note: {report.note}", file=sys.stderr)
    print(report.table)
    for warning in report.warnings:
        print(f"samtune: warning: {warning}", file=sys.stderr)
    print(f"{len(report.accumulator)} cases scored; wrote {report.per_case_path} and {report.summary_path}")
    return 0


def run_with_model(args: argparse.Namespace) -> int:
    """`samtune eval --run RUN_DIR [--data SOURCE] [--split val]`."""
    if args.pred is not None or args.gt is not None:
        raise UserError("--run predicts the cases itself: drop --pred/--gt (or drop --run to score files)")
    if args.pred_label_map:
        raise UserError("--pred-label-map applies to --pred files; with --run the predictions are the run's classes")
    if args.batch_size is not None and args.batch_size < 1:
        raise UserError(f"--batch-size must be >= 1, got {args.batch_size}")
    classes, names = parse_classes(args.classes)
    if names:
        raise UserError("with --run the class names come from the run; give --classes as plain labels (e.g. 1 2)")

    from samtune.inference.run_eval import evaluate_run

    from samtune.study.members import expand_runs

    args.run = expand_runs(args.run, args.strategy, args.dataset)
    runs = args.run if len(args.run) > 1 or args.tta else args.run[0]
    result = evaluate_run(
        runs, args.out, tta=args.tta, data=args.data, split=args.split, label_spec=args.label_map, classes=classes,
        nsd_tolerance=args.nsd_tolerance, both_empty=args.both_empty, batch_size=args.batch_size,
        device=args.device, overwrite=args.overwrite, backend=args.backend, precision=args.precision,
    )
    print(result.table)
    print(f"{len(result.accumulator)} cases of {result.source} scored; wrote {result.per_case_path} "
          f"and {result.summary_path}")
    return 0
