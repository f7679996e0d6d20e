"""`samtune train`: fine-tune a model per a YAML recipe into a run directory."""

from __future__ import annotations

import argparse


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train",
        help="fine-tune per a YAML recipe (or resume a run)",
        description=(
            "Train per CONFIG.yaml (see the recipes shipped in samtune/recipes). Multi-process: "
            "torchrun --nproc_per_node N -m samtune train CONFIG.yaml --out RUN_DIR."
        ),
    )
    parser.add_argument("config", nargs="?", help="YAML recipe (a shipped recipe name like study/lite_medsam_decoder_full works too)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a configuration value, e.g. --set optim.lr=3e-4 (repeatable)")
    parser.add_argument("--out", help="run directory to create")
    parser.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR from its last checkpoint")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing run directory")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"],
                        help="where to train (default: the recipe's run.device, auto = cuda when available)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from samtune.configs import load_config
    from samtune.engine.api import train
    from samtune.engine.config import TrainConfig, check_values
    from samtune.engine.recipes import resolve_recipe
    from samtune.errors import UserError

    if args.resume:
        if args.config or args.overrides or args.out:
            raise UserError("--resume RUN_DIR takes the run's saved configuration; drop CONFIG, --set and --out")
        result = train(None, args.resume, resume=True, device=args.device)
    else:
        if not args.config or not args.out:
            raise UserError("give a recipe and a run directory: samtune train CONFIG.yaml --out RUN_DIR")
        config = load_config(TrainConfig, resolve_recipe(args.config), args.overrides)
        check_values(config)  # value ranges, before the run directory exists
        result = train(config, args.out, overwrite=args.overwrite, device=args.device)
    best = f", best validation Dice {result.best_dice:.4f} at step {result.best_step}" if result.best_dice is not None else ""
    print(f"trained {result.steps} steps in {result.wall_seconds:.0f}s{best}")
    return 0
