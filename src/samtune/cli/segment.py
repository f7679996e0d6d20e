"""`samtune segment`: zero-shot prompted segmentation of one image or volume, an alias of
``samtune predict IMAGE --model NAME --out-file MASK [--overlay-file PICTURE]``.

The options map one to one onto `samtune predict`'s (``--out`` -> ``--out-file``,
``--overlay`` -> ``--overlay-file``, ``--model`` defaults to lite_medsam), and the command
runs predict's code: the same checks, outputs and messages. A volume is segmented as
predict segments it: prompted on ``--slice`` and propagated slice by slice, written as
NIfTI (``--out MASK.nii.gz``).
"""

from __future__ import annotations

import argparse


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "segment",
        help="segment one image (or a volume from one prompted slice) from a box and/or points",
        description=(
            "Zero-shot prompted segmentation: `samtune predict IMAGE --model NAME --out-file MASK`. "
            "Coordinates are pixels of the input image (x = column, y = row, origin top-left). For "
            "volumes, --slice picks the prompted 2D slice along --axis (0 = first array axis, the "
            "slowest; for NIfTI read by SimpleITK that is the axial index z) and the object is "
            "propagated through the volume."
        ),
    )
    parser.add_argument("image", help="PNG/JPG/TIFF image, or NIfTI/NRRD/MHA volume or DICOM folder with --slice")
    parser.add_argument("--model", default="lite_medsam", help="registered model (default: lite_medsam)")
    parser.add_argument("--checkpoint", help="weights file for models without packaged weights")
    parser.add_argument(
        "--box", nargs=4, type=float, metavar=("X0", "Y0", "X1", "Y1"),
        help="box around the object: left, top, right, bottom pixel coordinates",
    )
    parser.add_argument(
        "--point", nargs=2, type=float, action="append", metavar=("X", "Y"), help="object point (repeatable)"
    )
    parser.add_argument(
        "--negative-point", nargs=2, type=float, action="append", metavar=("X", "Y"),
        help="background point (repeatable)",
    )
    parser.add_argument("--slice", type=int, help="volumes: the slice the prompt is on")
    parser.add_argument("--axis", type=int, choices=(0, 1, 2), help="array axis to slice a volume along (default 0)")
    parser.add_argument("--out", required=True, help="label file to write: MASK.png for a 2D image (0 background, "
                        "1 object; use --overlay to look at it), MASK.nii.gz for a volume")
    parser.add_argument("--overlay", help="also write the image with the mask drawn on it (PNG; a montage for volumes)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    from samtune.cli.backend_args import add_backend_arguments

    add_backend_arguments(parser)
    parser.add_argument("--overwrite", action="store_true", help="replace existing output files")
    parser.set_defaults(func=run)


def predict_argv(args: argparse.Namespace) -> list[str]:
    """The `samtune predict` command line this segment command stands for."""
    argv = [args.image, "--model", args.model, "--out-file", args.out, "--device", args.device,
            "--backend", args.backend, "--precision", args.precision]
    for flag, value in (("--checkpoint", args.checkpoint), ("--overlay-file", args.overlay),
                        ("--slice", args.slice), ("--axis", args.axis)):
        if value is not None:
            argv += [flag, str(value)]
    if args.box:
        argv += ["--box", *(repr(v) for v in args.box)]
    for flag, points in (("--point", args.point), ("--negative-point", args.negative_point)):
        for x, y in points or []:
            argv += [flag, repr(x), repr(y)]
    return argv + (["--overwrite"] if args.overwrite else [])


def run(args: argparse.Namespace) -> int:
    from samtune.cli import predict

    parser = argparse.ArgumentParser(prog="samtune", add_help=False)
    predict.add_parser(parser.add_subparsers())
    return predict.run(parser.parse_args(["predict", *predict_argv(args)]))
