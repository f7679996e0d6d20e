"""Trainable and total parameter counts of strategies, computed on the meta device.

Models are built with ``device="meta"`` (shapes only, no memory, no weights), so
counting SAM ViT-H's 641M parameters costs well under a second.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Sequence

from samtune.methods.strategy import Strategy, apply_strategy, parameter_count


@dataclass(frozen=True)
class StrategyCount:
    strategy: Strategy
    trainable: int
    total: int

    @property
    def fraction(self) -> float:
        return self.trainable / self.total if self.total else 0.0


def strategy_counts(strategies: Sequence[Strategy], num_classes_changed: bool = False) -> list[StrategyCount]:
    """Counts for each strategy, each backbone built once on the meta device."""
    from samtune.models.registry import create_model

    bases = {}
    counts = []
    for strategy in strategies:
        if strategy.backbone not in bases:
            bases[strategy.backbone] = create_model(strategy.backbone, device="meta")
        model = copy.deepcopy(bases[strategy.backbone])
        apply_strategy(model, strategy, num_classes_changed=num_classes_changed)
        counts.append(StrategyCount(strategy, *parameter_count(model)))
    return counts
