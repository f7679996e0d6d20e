"""Tiny trained runs for inference and CLI tests, trained once per test session.

`trained_run("automatic" | "prompted", tmp_path_factory)` trains ``tiny_vit_test`` (decoder,
full fine-tune, 3 steps) on a generated disc dataset; the run directory is cached per
mode, so the inference and CLI test folders share it. Training uses one torch thread
(see tests/inference/conftest.py).
"""

from __future__ import annotations

from pathlib import Path

import torch
from tests.helpers.generated_data import write_disc_dataset

_RUNS: dict[str, Path] = {}


def trained_run(mode: str, tmp_path_factory) -> Path:
    if mode not in _RUNS:
        from samtune.engine.api import train
        from samtune.engine.config import TrainConfig

        root = tmp_path_factory.mktemp(f"{mode}_run")
        config = TrainConfig()
        config.model.name = "tiny_vit_test"
        config.strategy.component, config.strategy.method = "decoder", "full"
        config.task.mode = mode
        config.data.train = str(write_disc_dataset(root / "train", 4, seed=1))
        config.data.val = str(write_disc_dataset(root / "val", 2, seed=2))
        config.optim.steps, config.optim.lr = 3, 3e-3
        config.eval.every, config.run.log_every, config.run.checkpoint_every = 3, 1, 3
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            train(config, root / "run")
        finally:
            torch.set_num_threads(threads)
        _RUNS[mode] = root / "run"
    return _RUNS[mode]
