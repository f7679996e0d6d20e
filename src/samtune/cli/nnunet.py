"""`samtune nnunet`: nnU-Net v2 interoperability.

    samtune nnunet export SOURCE --id 4 --name Prostate --out nnUNet_raw [--labels SPEC]
    samtune nnunet check nnUNet_raw/Dataset004_Prostate
    samtune nnunet plan nnUNet_raw/Dataset004_Prostate --configuration 2d --work nnunet_work

`export` writes any source samtune reads (PNG, NIfTI, DICOM, list files, folders) as an
nnU-Net raw dataset and needs no nnU-Net; `check` runs nnU-Net's own integrity check
(needs the `samtune[nnunet]` extra).
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("nnunet", help="nnU-Net v2: export a source as a raw dataset, check it")
    commands = parser.add_subparsers(dest="nnunet_command", metavar="ACTION", required=True)
    export = commands.add_parser(
        "export", help="write a source as nnUNet_raw/DatasetNNN_NAME",
        description="Write the labelled cases of SOURCE as an nnU-Net v2 raw dataset: imagesTr/CASE_0000.nii.gz "
                    "(one file per channel, geometry kept), labelsTr/CASE.nii.gz (the label map applied: "
                    "0 background, 1..K classes) and dataset.json.",
    )
    export.add_argument("source", metavar="SOURCE", help="list file, folder, nnU-Net dataset, image files...")
    export.add_argument("--id", type=int, required=True, dest="dataset_id", metavar="N", help="dataset id 1..999")
    export.add_argument("--name", required=True, help="dataset name (DatasetNNN_NAME)")
    export.add_argument("--out", required=True, type=Path, metavar="RAW", help="the nnUNet_raw folder")
    export.add_argument("--labels", metavar="SPEC", help="label map, e.g. 'binary' or 'central=254,peripheral=255'")
    export.add_argument("--channel-names", nargs="+", metavar="NAME",
                        help="one per channel; 'CT' gets nnU-Net's CT normalisation (default: image)")
    export.add_argument("--root", metavar="DIR", help="folder that relative paths of a list file start from")
    export.add_argument("--check", action="store_true", help="then run nnU-Net's integrity check (needs nnunetv2)")
    export.set_defaults(func=run_export)
    check = commands.add_parser("check", help="run nnU-Net's dataset integrity check on a raw dataset")
    check.add_argument("folder", type=Path, metavar="DATASET_FOLDER")
    check.set_defaults(func=run_check)
    plan = commands.add_parser("plan", help="run nnU-Net's own planning and preprocessing on a raw dataset")
    plan.add_argument("folder", type=Path, metavar="DATASET_FOLDER")
    plan.add_argument("--configuration", default="2d", help="2d, 3d_fullres, 3d_lowres (default 2d)")
    plan.add_argument("--work", type=Path, required=True, metavar="DIR",
                      help="folder for nnUNet_preprocessed and nnUNet_results")
    plan.add_argument("--processes", type=int, default=1)
    plan.set_defaults(func=run_plan)


def run_export(args: argparse.Namespace) -> int:
    from samtune.data.nnunet_check import require_nnunet, verify_with_nnunet
    from samtune.data.nnunet_export import export_nnunet

    if args.check:
        require_nnunet()  # before anything is written
    result = export_nnunet(args.source, args.dataset_id, args.name, args.out, labels=args.labels,
                           channel_names=args.channel_names, root=args.root)
    state = "already up to date" if result.unchanged else "written"
    print(f"{result.folder}: {result.cases} cases, {result.channels} channel(s), labels {result.labels} ({state})")
    if args.check:
        verify_with_nnunet(result.folder)
        print("nnU-Net integrity check passed")
    return 0


def run_check(args: argparse.Namespace) -> int:
    from samtune.data.nnunet_check import verify_with_nnunet
    from samtune.errors import UserError

    if not (args.folder / "dataset.json").is_file():
        raise UserError(f"{args.folder} holds no dataset.json; pass an nnU-Net raw dataset folder")
    verify_with_nnunet(args.folder)
    print(f"{args.folder}: nnU-Net integrity check passed")
    return 0


def run_plan(args: argparse.Namespace) -> int:
    from samtune.study.nnunet_engine import plan_and_preprocess

    plans = plan_and_preprocess(args.folder, args.work, args.configuration, args.processes)
    print(f"nnU-Net plans: {plans}")
    return 0
