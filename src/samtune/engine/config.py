"""The training configuration: dataclasses loaded strictly from YAML recipes.

Every field has a default, so a recipe states only what differs. The resolved
configuration is saved as ``config.yaml`` in the run directory.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal


@dataclass
class ModelConfig:
    name: str = "lite_medsam"
    checkpoint: str | None = None  # weights file for models without packaged weights
    image_size: int | None = None  # None: the model's native input size
    grad_checkpointing: bool = False


@dataclass
class StrategyConfig:
    component: Literal["decoder", "encoder+decoder"] = "decoder"
    method: str = "full"  # full | adapter | lora | dora (see `samtune strategies`)
    rank: int = 4
    alpha: float = 4.0
    dropout: float = 0.0
    blocks: list[int] | None = None  # image-encoder blocks to adapt; None = all
    adapter_init: Literal["zero", "study"] = "zero"


@dataclass
class DataSource:
    """One of several training/validation datasets (multi-dataset training, setup 2)."""

    path: str = ""  # list file, nnU-Net folder or images/+masks/ folder
    labels: str | None = None  # its own label map; None: data.labels, else the source's own or binary
    weight: float = 1.0  # sampling weight: each step draws a dataset with probability weight/sum


@dataclass
class DataConfig:
    train: str | list[DataSource] = ""  # list file, nnU-Net folder or images/+masks/ folder, or several sources
    val: str | list[DataSource] | None = None  # same kinds; None: no validation
    root: str | None = None  # base folder for relative paths in list files
    labels: str | None = None  # e.g. "binary", "central=254,peripheral=255"; None: the source's own or binary
    axis: int = 0  # volume axis to slice along (array order z, y, x)
    empty_slices: str = "keep"  # keep | drop | a ratio of empty to non-empty slices, e.g. "0.2"
    window: str | None = None  # CT window preset name or "level,width"
    percentiles: list[float] | None = None  # MR clipping, e.g. [0.5, 99.5]
    augment: bool = False  # flips, rotation, scaled crop, intensity jitter (seeded)
    channels: list[int] | None = None  # image channels to use (1 or 3); None: all


@dataclass
class TaskConfig:
    mode: Literal["automatic", "prompted"] = "automatic"
    prompt: Literal["box", "point", "hybrid"] = "box"  # drawn with the study's defaults
    prompt_per: Literal["component", "class"] = "component"  # one prompt per region or per class


@dataclass
class OptimConfig:
    lr: float = 1e-4
    weight_decay: float = 0.01
    steps: int = 200  # optimiser steps
    batch_size: int = 1
    accumulation: int = 1
    warmup_steps: int = 0
    schedule: Literal["cosine", "poly", "constant"] = "cosine"
    clip_grad: float | None = 1.0


@dataclass
class LossConfig:
    dice: float = 1.0
    ce: float = 1.0


@dataclass
class EvalConfig:
    every: int = 50  # validate every N optimiser steps (and at the end)
    patience: int | None = None  # early stopping: validations without improvement


@dataclass
class RunConfig:
    seed: int = 0
    device: Literal["auto", "cpu", "cuda"] = "auto"
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"
    cache_embeddings: Literal["auto", "memory", "off"] = "auto"
    log_every: int = 10
    checkpoint_every: int = 50
    threads: int | None = None  # torch CPU threads; None: torch's default
    tensorboard: Literal["auto", "on", "off"] = "auto"  # auto: when the tensorboard package is installed


@dataclass
class TrainConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    strategy: StrategyConfig = field(default_factory=StrategyConfig)
    data: DataConfig = field(default_factory=DataConfig)
    task: TaskConfig = field(default_factory=TaskConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    run: RunConfig = field(default_factory=RunConfig)
