"""`samtune predict`: label images, volumes and DICOM series with a run or a zero-shot model.

    samtune predict scans/*.nii.gz --run runs/prostate --out preds/ [--overlay]
    samtune predict slice.png --model lite_medsam --box 40 50 120 160 --out preds/
    samtune predict brain.nii.gz --model lite_medsam --slice 94 --box 60 40 140 180 --out preds/
    samtune predict a.png b.nii.gz --model lite_medsam --prompts prompts.json --out preds/

Outputs, prompts file format and volume propagation: see `samtune.inference.predict_files`,
`samtune.inference.prompt_file` and `samtune.inference.propagation`.
"""

from __future__ import annotations

import argparse
import sys

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
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--run", metavar="RUN_DIR", action="append",
                        help="a training run directory; repeat it for an ensemble (softmax probabilities averaged)")
    source.add_argument("--model", metavar="NAME", help="a registered model, zero-shot and prompted (e.g. lite_medsam)")
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
    parser.add_argument("--overlay", action="store_true", help="also write overlay PNGs (a montage for volumes)")
    parser.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    parser.add_argument("--batch-size", type=int, metavar="N",
                        help="slices per forward (default 1 on the CPU, where batches do not pay, 8 on CUDA)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
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
    from pathlib import Path

    from samtune.errors import UserError
    from samtune.inference.predict_files import PredictOptions, plan_outputs, predict_files, unmatched_prompt_names
    from samtune.inference.predictor import Predictor
    from samtune.inference.prompt_file import InputPrompt, load_prompt_file

    if args.checkpoint and not args.model:
        raise UserError("--checkpoint goes with --model; a run directory holds its own weights")
    if args.batch_size is not None and args.batch_size < 1:
        raise UserError(f"--batch-size must be >= 1, got {args.batch_size}")
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
        out_dir=Path(args.out), prompt=prompt, prompts=load_prompt_file(args.prompts) if args.prompts else {},
        axis=args.axis, batch_size=args.batch_size, overlay=args.overlay, overwrite=args.overwrite,
    )
    plans = plan_outputs(args.inputs, options)  # fail fast, before the model loads
    for name in unmatched_prompt_names(plans, options):
        print(f"samtune: warning: {args.prompts} entry '{name}' matches no input", file=sys.stderr)
    if args.run:
        from samtune.study.members import expand_runs

        args.run = [str(r) for r in expand_runs(args.run, args.strategy, args.dataset)]
    if args.run and (len(args.run) > 1 or args.tta or args.probabilities):
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
    if args.run:
        predictor = Predictor.from_run(args.run[0], device=args.device)
    else:
        predictor = Predictor.from_model(args.model, checkpoint=args.checkpoint, device=args.device)
    count = 0
    for written in predict_files(predictor, args.inputs, options):
        print(written.description)
        count += 1
    print(f"{count} input(s) predicted into {args.out}")
    return 0
