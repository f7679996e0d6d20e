"""`samtune export`: write a tuned model as one plain checkpoint in the official key layout."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "export",
        help="fold a tuned model into a plain official-layout checkpoint",
        description=(
            "Rebuild the base model recorded in a tuning directory (tuning.json + "
            "tuning.safetensors, or a run directory holding one), apply the saved strategy "
            "and write a full state dict with the official SAM/TinyViT keys: LoRA and DoRA "
            "updates are merged into the weights, full fine-tunes are written as they are. "
            "Next to FILE.pth a FILE.json says what a loader needs: num_multimask_outputs "
            "(classes + 1 for an automatic run, whose decoder has more mask tokens and output "
            "heads than the official 3: build segment_anything's MaskDecoder with that value), "
            "the classes, the normalisation and the input size. With 3 outputs the file loads "
            "with the reference builders as it is. "
            "Adapters cannot be merged: keep the base checkpoint and the tuning directory."
        ),
    )
    parser.add_argument("source", type=Path, metavar="RUN_OR_TUNING_DIR", nargs="?")
    parser.add_argument("--merge", action="store_true", help="merge LoRA/DoRA into the weights (required)")
    parser.add_argument("--out", type=Path, metavar="FILE.pth")
    # ONNX export (issue 16): see samtune.inference.onnx_export.
    parser.add_argument("--onnx", type=Path, metavar="DIR",
                        help="write encoder.onnx, decoder.onnx and manifest.json of a run (or of --model NAME) "
                             "for --backend onnxruntime / openvino and predict --onnx DIR")
    parser.add_argument("--model", metavar="NAME", help="with --onnx: a registered model, zero-shot (e.g. lite_medsam)")
    parser.add_argument(
        "--checkpoint", type=Path, metavar="BASE.pth",
        help="base checkpoint, if not at the path recorded in tuning.json (sha256 must match)",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out file (and its .json) or --onnx folder")
    parser.set_defaults(func=run)


def find_tuning_dir(source: Path) -> Path:
    """A run directory's weights/ (the run checked through `samtune.runs.RunDir`), else `source`
    itself or the one directory below it (up to two levels) with tuning.json."""
    from samtune.errors import UserError
    from samtune.methods.checkpoint import RECORD_FILE
    from samtune.runs import RunDir, RunLayout

    if not source.is_dir():
        raise UserError(f"{source} is not a directory; pass a run directory or a tuning directory")
    if RunLayout(source).config_path.is_file():
        run = RunDir.open(source)
        _ = run.record, run.tensors  # one line naming a missing or damaged file
        return run.weights_dir
    if (source / RECORD_FILE).is_file():
        return source
    found = sorted(p.parent for p in [*source.glob(f"*/{RECORD_FILE}"), *source.glob(f"*/*/{RECORD_FILE}")])
    if not found:
        raise UserError(f"no {RECORD_FILE} in {source} or below; was the run saved with samtune?")
    if len(found) > 1:
        raise UserError(
            f"{source} holds several tuning directories ({', '.join(map(str, found[:4]))}); pass one of them"
        )
    return found[0]


def run(args: argparse.Namespace) -> int:
    from samtune.errors import UserError

    if args.onnx is not None:
        return run_onnx(args)
    if args.source is None or args.out is None:
        raise UserError("export needs RUN_OR_TUNING_DIR and --out FILE.pth (or --onnx DIR)")
    if not args.merge:
        raise UserError(
            "export writes merged official-layout checkpoints only: pass --merge "
            "(LoRA/DoRA are folded into the weights; full fine-tunes are copied as they are)"
        )
    from samtune.engine.export_card import card_path, export_card, write_export_card
    from samtune.outputs import check_output_file

    check_output_file(args.out, args.overwrite)  # before the model loads: a bad --out fails in a second
    check_output_file(card_path(args.out), args.overwrite)  # the loader card written beside it
    import torch

    from samtune.atomic import atomic_path
    from samtune.methods import export_merged, load_tuned_model

    directory = find_tuning_dir(args.source)
    model = load_tuned_model(directory, checkpoint=args.checkpoint)
    state = export_merged(model)
    card = export_card(model, directory, args.out)
    with atomic_path(args.out) as tmp:
        torch.save(state, tmp)
    card_file = write_export_card(card, card_path(args.out))
    print(f"wrote {args.out}: {len(state)} tensors, strategy {card['strategy']}, merged")
    outputs = card["num_multimask_outputs"]
    print(f"wrote {card_file}: num_multimask_outputs {outputs}, classes {card['classes']}, "
          f"{card['normalisation']['kind']} normalisation, {card['image_size']} px input"
          + (f"; build segment_anything's MaskDecoder with num_multimask_outputs={outputs} to load it"
             if outputs != 3 else ""))
    return 0


def run_onnx(args: argparse.Namespace) -> int:
    """`samtune export RUN --onnx DIR` / `samtune export --model NAME --onnx DIR`."""
    from samtune.errors import UserError
    from samtune.inference.onnx_export import export_onnx
    from samtune.inference.predictor import Predictor

    if (args.source is None) == (args.model is None):
        raise UserError("--onnx exports either a run directory (samtune export RUN --onnx DIR) or --model NAME")
    if args.merge or args.out is not None:
        raise UserError("--onnx writes a folder of graphs; drop --merge/--out (they write a .pth checkpoint)")
    from samtune.outputs import check_output_folder

    check_output_folder(args.onnx, overwrite=args.overwrite, flag="--onnx")  # before loading the model
    if args.model:
        predictor, source = Predictor.from_model(args.model, checkpoint=args.checkpoint), args.model
    else:
        predictor, source = Predictor.from_run(args.source), str(args.source)
    manifest = export_onnx(predictor, args.onnx, source, overwrite=args.overwrite)
    print(f"wrote {args.onnx}: encoder.onnx, decoder.onnx, manifest.json ({manifest['mode']}, "
          f"{len(manifest['classes'])} class(es), {manifest['image_size']} px, opset {manifest['opset']})")
    return 0
