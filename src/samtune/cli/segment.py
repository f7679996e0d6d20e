"""`samtune segment`: zero-shot prompted segmentation of one image or volume slice."""

from __future__ import annotations

import argparse


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "segment",
        help="segment one image (or one slice of a volume) from a box and/or points",
        description=(
            "Zero-shot prompted segmentation. Coordinates are pixels of the input image "
            "(x = column, y = row, origin top-left). For volumes, --slice picks the 2D "
            "slice along --axis (0 = first array axis, the slowest; for NIfTI read by "
            "SimpleITK that is the axial index z)."
        ),
    )
    parser.add_argument("image", help="PNG/JPG/TIFF image, or NIfTI/NRRD/MHA volume with --slice")
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
    parser.add_argument("--slice", type=int, help="slice index for a volume")
    parser.add_argument("--axis", type=int, default=0, help="array axis to slice a volume along (default 0)")
    parser.add_argument("--out", required=True, help="mask PNG to write (0 background, 1 object: the values "
                        "`samtune predict` writes; use --overlay to look at it)")
    parser.add_argument("--overlay", help="also write the image with the mask drawn on it (PNG)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    from samtune.cli.backend_args import add_backend_arguments

    add_backend_arguments(parser)
    parser.add_argument("--overwrite", action="store_true", help="replace existing output files")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from samtune.data.readers import read_image
    from samtune.errors import UserError
    from samtune.inference.comparison import Panel, comparison_figure
    from samtune.inference.overlay import save_png
    from samtune.inference.predictor import Predictor
    from samtune.inference.prompted import check_prompts
    from samtune.outputs import check_output_file

    check_output_file(args.out, args.overwrite)
    if args.overlay:
        check_output_file(args.overlay, args.overwrite, flag="--overlay")
        if Path(args.overlay).absolute() == Path(args.out).absolute():
            raise UserError(f"--out and --overlay are both {args.out}; give the overlay another name")
    image = read_image(args.image)
    array = take_slice(image, args.slice, args.axis, source=args.image)
    points = [tuple(p) for p in (args.point or [])] + [tuple(p) for p in (args.negative_point or [])]
    labels = [1] * len(args.point or []) + [0] * len(args.negative_point or [])
    box = tuple(args.box) if args.box else None
    check_prompts(array.shape[:2], box, points)  # before the model loads: fail fast
    predictor = Predictor.from_model(args.model, checkpoint=args.checkpoint, device=args.device)
    predictor = predictor.with_backend(args.backend, args.precision, args.model)  # issue 16
    mask = predictor.predict_image(array, box=box, points=points or None, point_labels=labels or None)
    # Class values, as `samtune predict` writes them (0 background, 1 object), so that
    # `samtune eval` scores both kinds of output the same way.
    save_png(mask.astype("uint8"), args.out)
    if args.overlay:  # titled, with the prompt drawn; volume slices in the radiological view
        geometry = image.geometry if image.spatial_ndim == 3 else None
        comparison_figure(array, [Panel(f"{args.model}, zero-shot", mask)], args.overlay, box=box,
                          points=[tuple(p) for p in (args.point or [])], class_name="object", geometry=geometry,
                          axis=args.axis, title=Path(args.image).name + (f", slice {args.slice}" if args.slice is not None else ""))
    print(f"{args.out}: {int(mask.sum())} object pixels of {mask.size}")
    return 0


def take_slice(image, index: int | None, axis: int, source: str):
    """The 2D array to segment: the image itself, or slice `index` of a volume."""
    import numpy as np

    from samtune.errors import UserError

    if image.spatial_ndim == 2:
        if index is not None:
            raise UserError(f"{source} is a 2D image; drop --slice")
        return image.array
    if image.spatial_ndim != 3 or image.array.ndim != 3:
        raise UserError(f"{source} has shape {image.array.shape}; expected a 2D image or a 3D volume")
    if index is None:
        raise UserError(f"{source} is a volume of shape {image.array.shape}; choose a slice with --slice K")
    if not 0 <= axis < 3 or not 0 <= index < image.array.shape[axis]:
        raise UserError(
            f"slice {index} along axis {axis} is outside {source} (shape {image.array.shape})"
        )
    return np.take(image.array, index, axis=axis)
