"""`samtune pretrain`: masked-image pretraining of a model's image encoder (setup 3)."""

from __future__ import annotations

import argparse


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "pretrain",
        help="self-supervised masked-image pretraining of the image encoder on unlabelled images",
        description=(
            "SimMIM-style masked-image modelling of the image encoder on unlabelled images and volumes "
            "(every slice counts; masks are ignored). Fine-tune from the result with "
            "samtune train RECIPE --set model.checkpoint=RUN_DIR."
        ),
    )
    parser.add_argument("sources", nargs="*", help="image folders, list files or nnU-Net folders (data.sources)")
    parser.add_argument("--config", help="YAML recipe of a PretrainConfig (optional)")
    parser.add_argument("--model", help="registered model name (model.name, default lite_medsam)")
    parser.add_argument("--checkpoint", help="weights file or pretrain run to start from (model.checkpoint)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a configuration value, e.g. --set masking.ratio=0.75 (repeatable)")
    parser.add_argument("--out", help="run directory to create")
    parser.add_argument("--resume", metavar="RUN_DIR", help="continue the pretrain run in RUN_DIR")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing run directory")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], help="where to train (default: run.device)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from samtune.configs import load_config
    from samtune.engine.pretrain import pretrain
    from samtune.engine.pretrain_config import PretrainConfig
    from samtune.errors import UserError

    if args.resume:
        if args.config or args.overrides or args.out or args.sources or args.model or args.checkpoint:
            raise UserError("--resume RUN_DIR takes the run's saved configuration; drop the other options")
        result = pretrain(None, args.resume, resume=True, device=args.device)
    else:
        if not args.out:
            raise UserError("give a run directory: samtune pretrain SOURCE... --out RUN_DIR")
        config = load_config(PretrainConfig, args.config, args.overrides)
        if args.sources:
            config.data.sources = list(args.sources)
        if args.model:
            config.model.name = args.model
        if args.checkpoint:
            config.model.checkpoint = args.checkpoint
        result = pretrain(config, args.out, overwrite=args.overwrite, device=args.device)
    print(f"pretrained {result.steps} steps in {result.wall_seconds:.0f}s")
    return 0
