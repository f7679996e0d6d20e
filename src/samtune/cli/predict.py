"""`samtune predict`: label images, volumes and DICOM series with a run or a zero-shot model.

    samtune predict scans/*.nii.gz --run runs/prostate --out preds/ [--overlay]
    samtune predict slice.png --model lite_medsam --box 40 50 120 160 --out preds/
    samtune predict brain.nii.gz --model lite_medsam --slice 94 --box 60 40 140 180 --out preds/
    samtune predict a.png b.nii.gz --model lite_medsam --prompts prompts.json --out preds/
    samtune predict ct.nii.gz --run runs/abdomen --refine --model lite_medsam --out preds/
    samtune predict slice.png --model lite_medsam --box 40 50 120 160 --out-file mask.png --overlay-file look.png

`samtune segment IMAGE ... --out MASK` is this command with ``--model`` (default
lite_medsam), ``--out-file MASK`` and ``--overlay-file``: see `samtune.cli.segment`.

Outputs, prompts file format and volume propagation: see `samtune.inference.predict_files`,
`samtune.inference.prompt_file` and `samtune.inference.propagation`.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

OUTPUTS_HELP = (
    "Writes NAME.png for 2D PNG/JPEG/TIFF inputs (8-bit class values: 0 background, k = class k; "
    "prompted: 0/1) and NAME.nii.gz with the source's spacing, origin and direction for volumes "
    "and DICOM series. A run trained in automatic mode needs no prompt; --model (zero-shot) and "
    "prompted runs need a box and/or points per input. A volume is then prompted on one slice "
    "(--slice K along --axis) and the object is propagated slice by slice in both directions. "
    "Prompts file: {\"NAME or FILE\": {\"box\": [x0, y0, x1, y1], \"points\": [[x, y], ...], "
    "\"point_labels\": [1, ...], \"slice\": K}, ...}. Coordinates are pixels of the (slice) "
    "image: x = column, y = row, origin top left."
)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "predict",
        help="label images and volumes with a trained run or a zero-shot model",
        description="Predict label files for images, volumes and DICOM series folders. " + OUTPUTS_HELP,
    )
    parser.add_argument("inputs", nargs="+", metavar="INPUT",
                        help="PNG/JPG/TIFF image, NIfTI/NRRD/MHA volume, or DICOM series folder")
    parser.add_argument("--out", metavar="DIR", help="output folder")
    parser.add_argument("--out-file", metavar="FILE", help="instead of --out DIR, for one input: its label file "
                        "(NAME.png for a 2D image, NAME.nii.gz for a volume)")
    parser.add_argument("--overlay-file", metavar="PNG", help="with --out-file: also write the overlay picture "
                        "(a montage for volumes) to this file")
    parser.add_argument("--run", metavar="RUN_DIR", action="append",
                        help="a training run directory; repeat it for an ensemble (softmax probabilities averaged)")
    parser.add_argument("--model", metavar="NAME", help="a registered model, zero-shot and prompted (e.g. lite_medsam); "
                        "with --run and --refine: the prompted model that refines the run")
    parser.add_argument("--window", metavar="LEVEL,WIDTH",
                        help="with --model: CT window in HU (e.g. 40,400, or a preset such as abdomen); "
                        "default: each volume's min..max (BENCHMARKS.md's propagation figures use 40,400)")
    parser.add_argument("--onnx", metavar="DIR", help="an ONNX export (samtune export ... --onnx DIR), run on onnxruntime or openvino (--backend)")
    parser.add_argument("--checkpoint", metavar="FILE", help="with --model: weights file for models without packaged weights")
    parser.add_argument("--box", nargs=4, type=float, metavar=("X0", "Y0", "X1", "Y1"), help="box prompt, pixels")
    parser.add_argument("--point", nargs=2, type=float, action="append", metavar=("X", "Y"),
                        help="object point (repeatable)")
    parser.add_argument("--negative-point", nargs=2, type=float, action="append", metavar=("X", "Y"),
                        help="background point (repeatable)")
    parser.add_argument("--prompts", metavar="JSON", help="per-input prompts file (format above)")
    parser.add_argument("--slice", type=int, metavar="K", help="volumes: slice the prompt is on (propagation start)")
    parser.add_argument("--axis", type=int, choices=(0, 1, 2),
                        help="volumes: array axis to slice across (default: the run's, else 0 = z)")
    propagation = parser.add_argument_group("volume propagation (prompted models)")
    propagation.add_argument("--margin", type=float, metavar="PX",
                             help="pixels added around the previous slice's mask to prompt the next (default 5)")
    propagation.add_argument("--mask-prompt", action=argparse.BooleanOptionalAction,
                             help="also give the previous slice's mask to SAM as its dense mask prompt")
    propagation.add_argument("--largest-component", action=argparse.BooleanOptionalAction,
                             help="keep only the largest connected region of each slice")
    propagation.add_argument("--stop", action="append", metavar="NAME=VALUE",
                             help="stopping-rule bound (repeatable): min_area, min_iou, min_stability, max_growth, "
                             "min_overlap, max_contrast, min_similarity; VALUE 'off' disables one (default: see BENCHMARKS.md)")
    propagation.add_argument("--max-slices", type=int, metavar="N", help="at most N slices each way from a prompt")
    propagation.add_argument("--refine", action="store_true",
                             help="with an automatic --run: re-segment each class by propagation from the slice where "
                             "it is largest, with the prompted model --model NAME (a run trained automatically is not promptable)")
    parser.add_argument("--overlay", action="store_true", help="also write overlay PNGs (a montage for volumes)")
    parser.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    parser.add_argument("--batch-size", type=int, metavar="N",
                        help="slices per forward (default 1 on the CPU, where batches do not pay, 8 on CUDA)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    parser.add_argument("--skip-bad-dicom", action="store_true",
                        help="leave unreadable files out of DICOM series (with a warning naming each) instead of refusing")
    from samtune.cli.backend_args import add_backend_arguments

    add_backend_arguments(parser)
    # --- ensembles, TTA, probabilities (issue 18; samtune.inference.predict_ensemble) ---
    parser.add_argument("--tta", choices=("flips",),
                        help="test-time augmentation: also predict the mirrored images and average (automatic runs)")
    parser.add_argument("--probabilities", action="store_true",
                        help="also write per-class probability maps NAME_prob_K (float NIfTI / 16-bit PNG)")
    parser.add_argument("--strategy", metavar="NAME",
                        help="with --run STUDY_OUT: every finished fold/seed run of this strategy (results.md row)")
    parser.add_argument("--dataset", metavar="NAME", help="with --run STUDY_OUT --strategy: the study's dataset")
    # --- end ensembles ---
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from samtune.data.formats_dicom import skip_bad_dicom

    with skip_bad_dicom(args.skip_bad_dicom):
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from samtune.errors import UserError
    from samtune.inference.predict_files import PredictOptions, plan_outputs, predict_files, unmatched_prompt_names
    from samtune.inference.predictor import Predictor
    from samtune.inference.prompt_file import InputPrompt, load_prompt_file

    if args.onnx and (args.run or args.model):
        raise UserError("give one of --run RUN_DIR, --model NAME or --onnx DIR (--run and --model together only with --refine)")
    if args.run and args.model and not args.refine:
        raise UserError("give either --run RUN_DIR or --model NAME (both only with --refine)")
    if not args.run and not args.model and not args.onnx:
        raise UserError("give --run RUN_DIR (a training run), --model NAME (zero-shot, prompted) or --onnx DIR (an export)")
    if args.refine and not args.run:
        raise UserError("--refine sharpens an automatic run: give --run RUN_DIR (and --model NAME to refine with)")
    if args.checkpoint and not args.model:
        raise UserError("--checkpoint goes with --model; a run directory holds its own weights")
    if args.window and not args.model:
        raise UserError("--window goes with --model; a run uses the window it was trained with")
    if args.batch_size is not None and args.batch_size < 1:
        raise UserError(f"--batch-size must be >= 1, got {args.batch_size}")
    check_out_flags(args)
    positives, negatives = args.point or [], args.negative_point or []
    points = [tuple(p) for p in positives + negatives]
    prompt = None
    if args.box or points or args.slice is not None:
        prompt = InputPrompt(
            box=tuple(args.box) if args.box else None,
            points=tuple(points) or None,
            point_labels=tuple([1] * len(positives) + [0] * len(negatives)) or None,
            slice=args.slice,
        )
    options = PredictOptions(
        out_dir=Path(args.out or Path(args.out_file).parent), label_file=Path(args.out_file) if args.out_file else None,
        picture_file=Path(args.overlay_file) if args.overlay_file else None, prompt=prompt, prompts=load_prompt_file(args.prompts) if args.prompts else {},
        axis=args.axis, batch_size=args.batch_size, overlay=args.overlay, overwrite=args.overwrite,
        propagation=propagation_config(args),
    )
    plans = plan_outputs(args.inputs, options)  # fail fast, before the model loads
    for name in unmatched_prompt_names(plans, options):
        print(f"samtune: warning: {args.prompts} entry '{name}' matches no input", file=sys.stderr)
    if args.run:
        from samtune.study.members import expand_runs

        args.run = [str(r) for r in expand_runs(args.run, args.strategy, args.dataset)]
    if args.run and (len(args.run) > 1 or args.tta or args.probabilities):
        if args.out_file:
            raise UserError("ensembles, --tta and --probabilities write into --out DIR; drop --out-file")
        from samtune.inference.ensemble import Ensemble
        from samtune.inference.predict_ensemble import check_outputs, predict_files_ensemble

        ensemble = Ensemble.from_runs(args.run, device=args.device, tta=args.tta)
        check_outputs(args.inputs, options, len(ensemble.class_names), args.probabilities)
        count = 0
        for written in predict_files_ensemble(ensemble, args.inputs, options, probabilities=args.probabilities):
            print(written.description)
            count += 1
        print(f"{count} input(s) predicted into {args.out} (QC scores in {Path(args.out) / 'qc.csv'})")
        return 0
    if args.tta or args.probabilities:
        raise UserError("--tta and --probabilities need --run (trained automatic runs), not --model")
    if args.onnx:  # issue 16: an exported folder runs on onnxruntime (fp32) or openvino (fp32, bf16)
        if args.backend == "torch" or args.precision == "int8":
            flag = "--backend torch" if args.backend == "torch" else f"--precision {args.precision}"
            raise UserError(f"--onnx DIR runs on onnxruntime or openvino; drop {flag} or use --run")
        backend = args.backend
        if backend == "auto":
            from samtune.inference.backends import auto_backend

            backend = "openvino" if auto_backend(args.precision) == "openvino" else "onnxruntime"
        predictor = Predictor.from_onnx(args.onnx, backend=backend, precision=args.precision)
    elif args.run:
        predictor = Predictor.from_run(args.run[0], device=args.device).with_backend(args.backend, args.precision, args.run[0])
    else:
        from samtune.inference.predict_files import check_inputs

        check_inputs(None, plans, options)  # inputs and prompts before the model loads: fail fast
        predictor = Predictor.from_model(args.model, checkpoint=args.checkpoint, device=args.device)
        predictor = predictor.with_backend(args.backend, args.precision, args.model)
        predictor.window = zero_shot_window(args.window)
    if args.refine:
        if predictor.mode != "automatic":
            raise UserError(f"--refine sharpens an automatic run; {args.run[0]} segments from prompts already")
        if not args.model:
            raise UserError(f"--refine needs a promptable model: {args.run[0]} segments automatically only; "
                            "add --model NAME (e.g. --model lite_medsam)")
        options.refine_with = Predictor.from_model(args.model, checkpoint=args.checkpoint, device=args.device)
        options.refine_with.window = zero_shot_window(args.window)
    count = 0
    for written in predict_files(predictor, args.inputs, options):
        print(written.description)
        count += 1
    print(f"{count} input(s) predicted into {args.out or args.out_file}")
    return 0


def check_out_flags(args: argparse.Namespace) -> None:
    """Exactly one of --out DIR and --out-file FILE, each with its own overlay flag."""
    from samtune.errors import UserError

    if args.out and args.out_file:
        raise UserError(f"give --out DIR or --out-file FILE, not both ({args.out} and {args.out_file})")
    if not args.out and not args.out_file:
        raise UserError("give --out DIR (an output folder) or, for one input, --out-file FILE (its label file)")
    if args.overlay_file and not args.out_file:
        raise UserError("--overlay-file goes with --out-file; with --out DIR use --overlay (pictures go into DIR/overlays)")
    if args.overlay and args.out_file:
        raise UserError("--overlay writes into --out DIR; with --out-file give --overlay-file PNG")


def zero_shot_window(text: str | None):
    """(level, width) from --window, or None (min..max of each input)."""
    from samtune.data.preprocess import CT_WINDOWS
    from samtune.data.intensity import parse_window
    from samtune.errors import ConfigError, UserError

    try:
        window = parse_window(text)
    except ConfigError:
        window = (0.0, 0.0)
    if window is not None and not window[1] > 0:
        raise UserError(f"--window {text}: expected LEVEL,WIDTH in HU with WIDTH > 0, or one of {', '.join(CT_WINDOWS)}")
    return window


def propagation_config(args: argparse.Namespace):
    """`PropagationConfig` from the propagation flags (defaults where a flag is absent)."""
    from dataclasses import replace

    from samtune.errors import UserError
    from samtune.inference.propagation import PropagationConfig
    from samtune.inference.stopping import StopRule

    config = PropagationConfig()
    stop = config.stop
    bounds = set(StopRule.__dataclass_fields__)
    for item in args.stop or []:
        name, _, value = item.partition("=")
        if name not in bounds or not value:
            raise UserError(f"--stop {item}: expected NAME=VALUE with NAME one of {', '.join(sorted(bounds))}")
        if value == "off":
            if name == "min_area":
                raise UserError("--stop min_area=off: min_area cannot be disabled (give 1 for the smallest)")
            disabled: dict[str, Any] = {name: None}
            stop = replace(stop, **disabled)
            continue
        try:
            number = int(value) if name == "min_area" else float(value)
        except ValueError:
            raise UserError(f"--stop {item}: {value!r} is not a number (or 'off')") from None
        bound: dict[str, Any] = {name: number}
        stop = replace(stop, **bound)
    changes = {"stop": stop, "mask_prompt": args.mask_prompt, "largest_component": args.largest_component,
               "max_slices": args.max_slices}
    if args.margin is not None:
        changes["margin"] = args.margin
    for flag in ("mask_prompt", "largest_component"):
        if changes[flag] is None:
            changes.pop(flag)  # not given: keep the default
    return replace(config, **changes)
