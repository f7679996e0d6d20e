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
            "The file loads with the reference code (e.g. segment_anything's builders). "
            "Adapters cannot be merged: keep the base checkpoint and the tuning directory."
        ),
    )
    parser.add_argument("source", type=Path, metavar="RUN_OR_TUNING_DIR")
    parser.add_argument("--merge", action="store_true", help="merge LoRA/DoRA into the weights (required)")
    parser.add_argument("--out", type=Path, required=True, metavar="FILE.pth")
    parser.add_argument(
        "--checkpoint", type=Path, metavar="BASE.pth",
        help="base checkpoint, if not at the path recorded in tuning.json (sha256 must match)",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    parser.set_defaults(func=run)


def find_tuning_dir(source: Path) -> Path:
    """`source` itself, or the one directory below it (up to two levels) with tuning.json."""
    from samtune.errors import UserError
    from samtune.methods.checkpoint import RECORD_FILE

    if not source.is_dir():
        raise UserError(f"{source} is not a directory; pass a run directory or a tuning directory")
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

    if not args.merge:
        raise UserError(
            "export writes merged official-layout checkpoints only: pass --merge "
            "(LoRA/DoRA are folded into the weights; full fine-tunes are copied as they are)"
        )
    from samtune.outputs import check_output_file

    check_output_file(args.out, args.overwrite)  # before the model loads: a bad --out fails in a second
    import torch

    from samtune.atomic import atomic_path
    from samtune.methods import export_merged, get_strategy, load_tuned_model

    directory = find_tuning_dir(args.source)
    model = load_tuned_model(directory, checkpoint=args.checkpoint)
    state = export_merged(model)
    with atomic_path(args.out) as tmp:
        torch.save(state, tmp)
    print(f"wrote {args.out}: {len(state)} tensors, strategy {get_strategy(model).name}, merged")
    return 0
