"""Recipes shipped with samtune (src/samtune/recipes/*.yaml) resolved by name or path, and
the study strategies' recipes generated from the strategy grid (`strategy_recipe`)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

from samtune.errors import ConfigError

# The study's training schedule for every backbone x component x method (Gu et al., MELBA
# 2025): 2000 steps with 100 warm-up steps, cosine decay, validation every 200 steps,
# automatic segmentation; full fine-tuning at 1e-4, the parameter-efficient methods at 3e-4.
STUDY_STEPS, STUDY_WARMUP, STUDY_EVAL_EVERY = 2000, 100, 200
FULL_LR, PARAMETER_EFFICIENT_LR = 0.0001, 0.0003


def recipe_dir() -> Path:
    return Path(str(resources.files("samtune") / "recipes"))


def list_recipes() -> list[str]:
    """Training recipes (study definitions under studies/ are for `samtune study`)."""
    root = recipe_dir()
    names = (str(p.relative_to(root).with_suffix("")) for p in root.rglob("*.yaml"))
    return sorted(name for name in names if not name.startswith("studies/"))


def resolve_recipe(name_or_path: str) -> Path:
    """A YAML path as given, else a shipped recipe name such as 'default'."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    name = name_or_path.removesuffix(".yaml")
    shipped = recipe_dir() / f"{name}.yaml"
    if shipped.is_file() and name in list_recipes():
        return shipped
    if name.startswith("study/"):  # the per-strategy recipe files this generator replaced
        raise ConfigError(f"recipe not found: {name_or_path}; the study strategies are generated now: "
                          f"samtune train --strategy BACKBONE/COMPONENT/METHOD (e.g. {_example(name)})")
    raise ConfigError(
        f"recipe not found: {name_or_path} (not a file, nor one of the shipped recipes: {', '.join(list_recipes())})"
    )


def _example(name: str) -> str:
    """'study/sam_vit_b_encoder_decoder_lora' -> 'sam_vit_b/encoder+decoder/lora' where it parses."""
    stem = name.removeprefix("study/")
    for component, written in (("encoder+decoder", "_encoder_decoder_"), ("decoder", "_decoder_")):
        backbone, found, method = stem.partition(written)
        if found and backbone and method:
            return f"{backbone}/{component}/{method}"
    return "sam_vit_b/encoder+decoder/lora"


def strategy_recipe(name: str) -> dict[str, Any]:
    """The training recipe (YAML mapping) of study strategy BACKBONE/COMPONENT/METHOD.

    E.g. ``sam_vit_b/encoder+decoder/lora``; the schedule is the study's (module
    constants). Models without packaged weights still need ``model.checkpoint``.
    """
    from samtune.methods.strategy import Strategy
    from samtune.models.registry import get_spec

    parts = name.split("/")
    if len(parts) != 3 or not all(parts):
        raise ConfigError(f"--strategy {name}: expected BACKBONE/COMPONENT/METHOD, e.g. sam_vit_b/encoder+decoder/lora")
    backbone, component, method = parts
    get_spec(backbone)  # unknown model: error with close names
    Strategy(backbone, component, method)  # type: ignore[arg-type]  # unknown component/method: error with close names
    return {
        "model": {"name": backbone, "checkpoint": None},
        "strategy": {"component": component, "method": method},
        "task": {"mode": "automatic"},
        "optim": {"lr": FULL_LR if method == "full" else PARAMETER_EFFICIENT_LR, "steps": STUDY_STEPS,
                  "warmup_steps": STUDY_WARMUP, "schedule": "cosine"},
        "eval": {"every": STUDY_EVAL_EVERY},
    }
