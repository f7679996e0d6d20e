"""Configuration of `samtune pretrain` (masked-image pretraining of the image encoder).

Optimiser, evaluation cadence and run settings are the fine-tuning ones
(`samtune.engine.config`); `eval.every` sets how often reconstructions.png is drawn.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from samtune.engine.config import EvalConfig, ModelConfig, OptimConfig, RunConfig


@dataclass
class PretrainDataConfig:
    sources: list[str] = field(default_factory=list)  # folders of images/volumes, list files, nnU-Net folders
    weights: list[float] | None = None  # sampling weight per source; None: each source equally often
    axis: int = 0  # volume axis to slice along (array order z, y, x)
    percentiles: list[float] | None = None  # intensity clipping per volume, e.g. [0.5, 99.5]
    workers: int | None = None  # DataLoader worker processes; None: 2 on CUDA, 0 on the CPU


@dataclass
class MaskingConfig:
    ratio: float = 0.6  # fraction of mask patches hidden (SimMIM's default)
    patch: int = 32  # side of a mask patch in input pixels (SimMIM's default)
    norm_target: bool = False  # reconstruct per-patch standardised pixels


@dataclass
class PretrainEvalConfig(EvalConfig):
    images: int = 4  # fixed slices shown in reconstructions.png


@dataclass
class PretrainStrategyConfig:
    """What trains in the image encoder: every weight (`full`), or only low-rank updates
    (`lora` / `dora`, options as in fine-tuning: rank, alpha, blocks...) for backbones too big
    to pretrain in full; the updates are merged into the exported weights."""

    method: str = "full"  # full | lora | dora
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class PretrainConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    strategy: PretrainStrategyConfig = field(default_factory=PretrainStrategyConfig)
    data: PretrainDataConfig = field(default_factory=PretrainDataConfig)
    masking: MaskingConfig = field(default_factory=MaskingConfig)
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(lr=1e-4, weight_decay=0.05))
    eval: PretrainEvalConfig = field(default_factory=PretrainEvalConfig)
    run: RunConfig = field(default_factory=RunConfig)
