"""Rebuilding a run's trained model: base weights + recorded strategy + saved tensors."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

if TYPE_CHECKING:  # RunDir.load_model calls load_model: only the annotation needs RunDir here
    from samtune.runs.reading import RunDir


def load_model(run: RunDir, device: str = "cpu") -> nn.Module:
    """The run's trained model in eval mode on `device`, after `run.check()`.

    weights/ holds the tuned tensors only. Frozen parts come from the base checkpoint,
    verified against the sha256 recorded at training time; for a base without weights (the
    tiny test models) they come from the random initialisation that `train` made right
    after seeding torch with run.seed, which is repeated exactly here.
    """
    from samtune.methods.checkpoint import load_tuning
    from samtune.models.registry import create_model

    run.check()
    settings, record = run.settings, run.record
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(settings.seed)
        model = create_model(settings.model, checkpoint=run.base_checkpoint(), pretrained=None,
                             **record.base.overrides)
    loaded = getattr(model, "checkpoint_path", None)
    run.verify_base(loaded)
    load_tuning(model, run.weights_dir, record=record, saved=run.tensors)
    return model.to(device).eval()
