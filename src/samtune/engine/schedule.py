"""Learning-rate schedules: linear warm-up, then cosine, polynomial or constant."""

from __future__ import annotations

import math

import torch


def lr_factor(step: int, total: int, warmup: int, kind: str, power: float = 0.9, floor: float = 0.0) -> float:
    """Multiplier of the base learning rate at optimiser step `step` (0-based).

    Warm-up rises linearly from 1/(warmup+1) to 1 over `warmup` steps; then "cosine"
    decays to `floor`, "poly" follows (1 - t)^power (nnU-Net's 0.9), "constant" stays 1.
    """
    if warmup > 0 and step < warmup:
        return (step + 1) / (warmup + 1)
    span = max(total - warmup, 1)
    t = min(max(step - warmup, 0) / span, 1.0)
    if kind == "cosine":
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * t))
    if kind == "poly":
        return floor + (1 - floor) * (1 - t) ** power
    if kind == "constant":
        return 1.0
    raise ValueError(f"unknown schedule {kind!r}")


def build_scheduler(
    optimizer: torch.optim.Optimizer, total: int, warmup: int, kind: str
) -> torch.optim.lr_scheduler.LambdaLR:
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(step, total, warmup, kind))
