"""A tiny study: `tiny_vit_test` on generated disc datasets (tests/generated_data.py), 3 steps."""

from __future__ import annotations

import copy
from pathlib import Path

import yaml

TINY_TRAIN = {
    "optim": {"steps": 3, "lr": 0.003, "warmup_steps": 0},
    "eval": {"every": 3},
    # One thread: on a shared 2-core machine, two OpenMP threads contend and tiny steps slow down 5x.
    "run": {"device": "cpu", "threads": 1, "log_every": 1, "checkpoint_every": 3},
}


def study_dict(sources: dict[str, Path], **changes) -> dict:
    """1 backbone x 2 components x 2 methods x the 'discs' dataset, updated by `changes`."""
    data = {
        "title": "tiny study",
        "train": copy.deepcopy(TINY_TRAIN),  # tests edit their copy; the next test gets 3 steps again
        "backbones": {"tiny_vit_test": {}},
        "components": ["decoder", "encoder+decoder"],
        "methods": ["full", "lora"],
        "datasets": {"discs": {"train": str(sources["train"]), "val": str(sources["val"])}},
        "seeds": [0],
    }
    data.update(changes)
    return data


def write_study(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path
