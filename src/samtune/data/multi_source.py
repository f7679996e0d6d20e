"""Sampling from several datasets: first a dataset (uniformly or by weight), then a slice.

So that a large dataset does not drown a small one, each draw picks dataset d with
probability ``w_d / sum(w)`` (all weights 1 by default), then one of its slices uniformly.
A draw is a pure function of (seed, stream position), like the training loop's sample
order, so a resumed run draws exactly what the uninterrupted run would have, and the
draw counts of a finished run can be recomputed from its step count alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from samtune.errors import ConfigError

_STREAM = 11  # separates these draws from the other per-position random streams


@dataclass(frozen=True)
class SourceMix:
    """Datasets' sizes (slices) and sampling weights, in configuration order."""

    names: tuple[str, ...]
    sizes: tuple[int, ...]
    weights: tuple[float, ...]

    def __post_init__(self) -> None:
        if not self.sizes or len(self.sizes) != len(self.weights) or len(self.names) != len(self.sizes):
            raise ConfigError("a source mix needs one size and one weight per dataset")
        for name, size, weight in zip(self.names, self.sizes, self.weights):
            if size < 1:
                raise ConfigError(f"dataset {name} has no slices to draw")
            if not weight > 0 or not np.isfinite(weight):
                raise ConfigError(f"dataset {name}: weight {weight} must be a positive number")

    @property
    def probabilities(self) -> np.ndarray:
        weights = np.asarray(self.weights, dtype=np.float64)
        return weights / weights.sum()

    def draw(self, seed: int, position: int) -> tuple[int, int]:
        """(dataset number, slice number within it) for stream `position`."""
        rng = np.random.default_rng([seed, position, _STREAM])
        dataset = int(rng.choice(len(self.sizes), p=self.probabilities)) if len(self.sizes) > 1 else 0
        return dataset, int(rng.integers(self.sizes[dataset]))

    def counts(self, seed: int, positions: int) -> dict[str, int]:
        """How many of the first `positions` draws went to each dataset."""
        tally = [0] * len(self.sizes)
        for position in range(positions):
            tally[self.draw(seed, position)[0]] += 1
        return dict(zip(self.names, tally))
