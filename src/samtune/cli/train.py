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
    parser.add_argument("config", nargs="?", help="YAML recipe (a shipped recipe name such as default works too)")
    parser.add_argument("--strategy", metavar="BACKBONE/COMPONENT/METHOD",
                        help="instead of CONFIG: the study's recipe for one strategy, e.g. sam_vit_b/encoder+decoder/lora "
                        "(2000 steps, cosine, lr 1e-4 full / 3e-4 adapter, lora; add --set model.checkpoint=FILE for "
                        "models without packaged weights)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a configuration value, e.g. --set optim.lr=3e-4 (repeatable)")
    parser.add_argument("--out", help="run directory to create")
    parser.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR from its last checkpoint; a finished run trains further "
                        "with --set optim.steps=N (a larger total)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing run directory")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"],
                        help="where to train (default: the recipe's run.device, auto = cuda when available)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from samtune.configs import apply_overrides, from_dict, load_config
    from samtune.engine.api import train
    from samtune.engine.config import TrainConfig, check_values
    from samtune.engine.recipes import resolve_recipe, strategy_recipe
    from samtune.errors import UserError

    if args.resume:
        if args.config or args.strategy or args.out or any(not o.startswith("optim.steps=") for o in args.overrides or []):
            raise UserError("--resume RUN_DIR takes the run's saved configuration; drop CONFIG and --out "
                            "(only --set optim.steps=N, to train a run further, goes with it)")
        if not continue_finished_run(args.resume, args.overrides):
            return 0
        result = train(None, args.resume, resume=True, device=args.device)
    else:
        if args.config and args.strategy:
            raise UserError(f"give a recipe or --strategy, not both ({args.config} and --strategy {args.strategy})")
        if not (args.config or args.strategy) or not args.out:
            raise UserError("give a recipe and a run directory: samtune train CONFIG.yaml --out RUN_DIR "
                            "(or --strategy BACKBONE/COMPONENT/METHOD instead of CONFIG.yaml)")
        if args.strategy:
            config = from_dict(TrainConfig, apply_overrides(strategy_recipe(args.strategy), args.overrides))
        else:
            config = load_config(TrainConfig, resolve_recipe(args.config), args.overrides)
        check_values(config)  # value ranges, before the run directory exists
        result = train(config, args.out, overwrite=args.overwrite, device=args.device)
    best = f", best validation Dice {result.best_dice:.4f} at step {result.best_step}" if result.best_dice is not None else ""
    print(f"trained {result.steps} steps in {result.wall_seconds:.0f}s{best}")
    run_dir = args.resume or args.out
    hint = low_dice_hint(result.best_dice, run_dir)
    if hint:
        print(f"samtune: note: {hint}")
    return 0


# Below this best validation Dice a run has most likely not learned the task yet.
LOW_DICE = 0.05


def low_dice_hint(best_dice: float | None, run_dir: str) -> str | None:
    """What to try when validation Dice stayed near zero (too few steps, too low a rate)."""
    from pathlib import Path

    from samtune.configs import load_yaml

    if best_dice is None or best_dice >= LOW_DICE:
        return None
    optim = (load_yaml(Path(run_dir) / "config.yaml") or {}).get("optim", {})
    steps, lr = optim.get("steps"), optim.get("lr")
    return (f"validation Dice stayed near zero (best {best_dice:.4f}): predictions are likely empty. The run "
            f"probably needs more steps (optim.steps is {steps}; continue it with: samtune train --resume "
            f"{run_dir} --set optim.steps={2 * steps if isinstance(steps, int) else 'N'}) or a higher learning "
            f"rate (optim.lr is {lr})")


def continue_finished_run(run_dir: str, overrides: list[str] | None) -> bool:
    """For `--resume`: False (after saying so) when the run already finished and no new
    step count was given; with ``--set optim.steps=N`` raise the run's step count first.

    A run is finished when its summary.json exists (written after the last step). Raising
    the step count stretches the learning-rate schedule over the new total from the
    resumed step on.
    """
    import json
    from pathlib import Path

    from samtune.configs import save_config
    from samtune.engine.api import resumable_config
    from samtune.errors import ConfigError
    from samtune.runs import RunLayout

    config = resumable_config(run_dir)  # refuses a damaged config.yaml or a missing state/last.pt
    run = Path(run_dir)
    summary_file = RunLayout(run).summary_path
    summary = json.loads(summary_file.read_text()) if summary_file.is_file() else None
    if not overrides:
        if summary is None:
            return True
        done = summary.get("steps")
        best = summary.get("best_val_dice")
        best_text = f", best validation Dice {best:.4f} at step {summary.get('best_step')}" if best is not None else ""
        early = " (stopped early: no validation gain for eval.patience evaluations)" if summary.get("stopped_early") else ""
        print(f"{run} already finished: {done} of {config.optim.steps} steps{early}{best_text}. To train it "
              f"further, raise the step count: samtune train --resume {run} --set optim.steps={2 * config.optim.steps}")
        return False
    value = overrides[-1].partition("=")[2]
    try:
        steps = int(value)
    except ValueError:
        raise ConfigError(f"optim.steps must be a whole number, got {value!r}") from None
    done = summary.get("steps", config.optim.steps) if summary else 0
    if steps <= max(done, 0) or steps < config.optim.steps:
        raise ConfigError(f"optim.steps={steps} would not continue {run}: it has trained {done} of "
                          f"{config.optim.steps} steps; give a larger number")
    config.optim.steps = steps
    save_config(config, run / "config.yaml")
    print(f"{run}: optim.steps raised to {steps}; continuing from the last checkpoint")
    return True
