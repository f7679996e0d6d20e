"""`samtune data check|split`: inspect a data source and make few-shot splits.

    samtune data check SOURCE [--labels central=254,peripheral=255] [--axis 0]
    samtune data split SOURCE --shots 5 --seed 0 --out splits/5shot [--val 5]
    samtune data split SOURCE --folds 5 --seed 0 --out splits/cv5     # fold0 ... fold4

SOURCE is a .csv/.tsv list file, an nnU-Net raw dataset folder or a folder with images/
and masks/ (see `samtune.data.sources`).
"""

from __future__ import annotations

import argparse
from typing import NoReturn


def _add_source_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", help="list file (.csv/.tsv), nnU-Net dataset folder, or folder with images/ + masks/")
    # checked by the source registry (samtune.data.sources), which names the kinds and close matches
    parser.add_argument("--kind", help="source kind: list, nnunet or folders (default: detected)")
    parser.add_argument("--root", help="list files: folder the listed paths are relative to")


def _labels(args: argparse.Namespace, source):
    from samtune.data.labels import parse_label_spec

    labels = parse_label_spec(args.labels) if args.labels else source.labels
    if args.subset:
        if labels is None:
            raise_user("--subset needs declared labels: give --labels NAME=VALUE,... or use a dataset.json")
        labels = labels.subset([name.strip() for name in args.subset.split(",")])
    if getattr(args, "other_labels", "error") != "error":
        if labels is None or labels.is_binary:
            raise_user("--other-labels background needs named classes: give --labels NAME=VALUE,... "
                       "(a binary map already takes every non-zero value)")
        labels = labels.with_others(args.other_labels)
    return labels


def raise_user(message: str) -> NoReturn:
    from samtune.errors import UserError

    raise UserError(message)


def _channels(text: str | None) -> tuple[int, ...] | None:
    if not text:
        return None
    try:
        return tuple(int(part) for part in text.split(","))
    except ValueError:
        raise_user(f"--channels takes comma-separated channel numbers such as 0 or 0,1,2, got '{text}'")


def run_check(args: argparse.Namespace) -> int:
    from samtune.data.sources import load_source
    from samtune.data.validate import check_source

    from samtune.data.formats_dicom import skip_bad_dicom

    source = load_source(args.source, kind=args.kind, root=args.root)
    with skip_bad_dicom(args.skip_bad_dicom):
        report = check_source(source, labels=_labels(args, source), axis=args.axis, channels=_channels(args.channels))
    print(report.format())
    fatal = report.fatal
    if fatal:  # the report (stdout) lists them all; one line on stderr, exit code 2
        more = f" and {len(fatal) - 1} more listed in the report" if len(fatal) > 1 else ""
        raise_user(f"{len(fatal)} error(s) in {source.path}: {fatal[0].where}: {fatal[0].message}{more}")
    return 0


SPLIT_FILES = ("train.csv", "val.csv", "split.json")


def run_split(args: argparse.Namespace) -> int:
    from samtune.data.sources import load_source
    from samtune.data.split import split_cases, write_split
    from samtune.outputs import check_outputs_in

    if args.shots is not None and args.shots < 1:
        raise_user(f"--shots {args.shots} is out of range; give a number of patient groups >= 1")
    if args.val is not None and args.val < 1:
        raise_user(f"--val {args.val} is out of range; give a number of patient groups >= 1, or leave it out")
    if not 0 <= args.seed < 2**32:
        raise_user(f"--seed {args.seed} is out of range; give an integer in [0, 2**32)")
    source = load_source(args.source, kind=args.kind, root=args.root)
    if args.folds is not None:
        from samtune.data.folds import fold_groups, write_folds

        if args.val is not None:
            raise_user("--val goes with --shots; with --folds each fold validates on its own patients")
        fold_groups(source, args.folds, args.seed)  # refuse a bad count before anything is written
        for number, folder in enumerate(write_folds(source, args.folds, args.out, args.seed)):
            print(f"fold {number}: {folder / 'train.csv'}, {folder / 'val.csv'}")
        return 0
    split = split_cases(source, shots=args.shots, seed=args.seed, val=args.val)
    check_outputs_in(args.out, SPLIT_FILES, args.overwrite)  # the last check: nothing written yet
    paths = write_split(split, args.out, source)
    print(f"train: {len(split.train)} case(s) from {len({c.group for c in split.train})} group(s) -> {paths['train']}")
    print(f"val: {len(split.val)} case(s) from {len({c.group for c in split.val})} group(s) -> {paths['val']}")
    return 0


def add_parser(subparsers) -> None:
    """Register `samtune data` and its `check` and `split` subcommands."""
    parser = subparsers.add_parser("data", help="check data sources and make few-shot splits",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="data_command", metavar="ACTION", required=True)

    check = commands.add_parser(
        "check", help="report cases, sizes, spacings, labels and every problem",
        description="Read every case of SOURCE and report the counts, image sizes, spacings (none for PNG/JPEG/"
        "TIFF, which store no spacing), the label values found per class and every problem (unreadable "
        "files, undeclared label values, empty masks...). Exit code 2 when a problem would stop training.")
    _add_source_arguments(check)
    check.add_argument("--labels", help="'binary', 'binary>=128' or NAME=VALUE[+VALUE],... (default: "
                       "dataset.json labels, else binary)")
    check.add_argument("--subset", help="comma-separated class names to keep")
    check.add_argument("--other-labels", choices=["error", "background"], default="error",
                       help="values --labels does not name: report them as errors (default), or send them to "
                       "background, as data.other_labels: background does in training")
    check.add_argument("--axis", type=int, default=0, help="slicing axis for volumes: 0 (z), 1 (y), 2 (x)")
    check.add_argument("--channels", help="image channels to use, e.g. 0 or 0,1,2")
    check.add_argument("--skip-bad-dicom", action="store_true",
                       help="leave unreadable files out of DICOM series (warning) instead of reporting an error")
    check.set_defaults(func=run_check)

    split = commands.add_parser(
        "split", help="few-shot train/val lists by patient group",
        description="Draw --shots patient groups (with --seed) for training and put the others (or --val of "
        "them) in validation; every slice of a patient goes to the same side. Writes OUT/train.csv and "
        "OUT/val.csv (paths relative to OUT, spelled through the folders you gave, symlinks kept) and "
        "OUT/split.json (seed, shots, case ids). Use OUT as a source: --set data.train=OUT/train.csv.")
    _add_source_arguments(split)
    sizes = split.add_mutually_exclusive_group(required=True)
    sizes.add_argument("--shots", type=int, help="number of patient groups for training")
    sizes.add_argument("--folds", type=int, metavar="K",
                       help="k-fold cross-validation by patient: OUT/fold0..fold<K-1>/ split folders and folds.json")
    split.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    split.add_argument("--val", type=int, help="number of groups for validation (default: all the others)")
    split.add_argument("--out", required=True, help="output folder for train.csv, val.csv, split.json "
                       "(with --folds: one such folder per fold)")
    split.add_argument("--overwrite", action="store_true", help="replace an existing split in --out")
    split.set_defaults(func=run_split)
