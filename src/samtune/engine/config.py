"""The training configuration: dataclasses loaded strictly from YAML recipes.

Every field has a default, so a recipe states only what differs. The resolved
configuration is saved as ``config.yaml`` in the run directory.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

from samtune.errors import ConfigError


@dataclass
class ModelConfig:
    name: str = "lite_medsam"
    checkpoint: str | None = None  # weights file for models without packaged weights
    image_size: int | None = None  # None: the model's native input size
    grad_checkpointing: bool = False
    # U-Net only (model.name unet): auxiliary outputs of the decoder levels in the loss,
    # weighted as nnU-Net weights them (`samtune.models.unet.deep_supervision_weights`)
    deep_supervision: bool = False


@dataclass
class StrategyConfig:
    component: Literal["decoder", "encoder+decoder"] = "decoder"
    method: str = "full"  # full | adapter | lora | dora (see `samtune strategies`)
    # The method's options, e.g. {rank: 8, blocks: [0, 1]} for lora; checked strictly against
    # what the chosen method takes (`samtune.methods.options`); unset ones take its defaults.
    options: dict[str, Any] = field(default_factory=dict)


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
    # Values the labels do not name: "error" (data check reports them), or "background" to
    # train on a few classes of a rich label map (e.g. liver=5,spleen=1 of a TotalSegmentator mask).
    other_labels: Literal["error", "background"] = "error"
    axis: int = 0  # volume axis to slice along (array order z, y, x)
    empty_slices: str = "keep"  # keep | drop | a ratio of empty to non-empty slices, e.g. "0.2"
    window: str | None = None  # CT window preset name or "level,width"
    percentiles: list[float] | None = None  # MR clipping, e.g. [0.5, 99.5]
    augment: bool = False  # flips, rotation, scaled crop, intensity jitter (seeded)
    channels: list[int] | None = None  # image channels to use (1 or 3); None: all
    workers: int | None = None  # DataLoader worker processes; None: 2 on CUDA, 0 on the CPU
    # LRU cache of read cases per dataset and process, in MiB (each worker keeps its own);
    # null: keep every case. A case evicted from it is read again when next needed.
    cache_mb: float | None = 1024.0


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


Device = Literal["auto", "cpu", "cuda"]


@dataclass
class RunConfig:
    seed: int = 0
    device: Device = "auto"
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


# ------------------------------------------------------------------ value ranges
# Types are checked when a recipe loads (samtune.configs); these are the ranges, checked
# before a run directory, a study folder or any output is created. Each refusal names the
# key path, the value and what to give instead.


def _finite(value: float) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def _refuse(key: str, value: object, allowed: str) -> ConfigError:
    return ConfigError(f"{key}: {value!r} is out of range; {allowed}")


def _rules(config: TrainConfig) -> list[tuple[str, object, bool, str]]:
    """(key, value, acceptable, what to give instead) for every ranged value."""
    # strategy.options are checked by the method that takes them (samtune.methods.options)
    o, loss, e, r = config.optim, config.loss, config.eval, config.run
    positive_int = "give an integer >= 1"
    rules: list[tuple[str, object, bool, str]] = [
        ("optim.lr", o.lr, _finite(o.lr) and o.lr > 0, "give a learning rate > 0 (e.g. 1e-4)"),
        ("optim.weight_decay", o.weight_decay, _finite(o.weight_decay) and o.weight_decay >= 0, "give a number >= 0"),
        ("optim.steps", o.steps, o.steps >= 1, positive_int),
        ("optim.batch_size", o.batch_size, o.batch_size >= 1, positive_int),
        ("optim.accumulation", o.accumulation, o.accumulation >= 1, positive_int),
        ("optim.warmup_steps", o.warmup_steps, o.warmup_steps >= 0, "give an integer >= 0 (0: no warm-up)"),
        ("optim.clip_grad", o.clip_grad, o.clip_grad is None or (_finite(o.clip_grad) and o.clip_grad > 0),
         "give a gradient-norm bound > 0, or null for no clipping"),
        ("loss.dice", loss.dice, _finite(loss.dice) and loss.dice >= 0, "give a weight >= 0"),
        ("loss.ce", loss.ce, _finite(loss.ce) and loss.ce >= 0, "give a weight >= 0"),
        ("eval.every", e.every, e.every >= 1, "validate every N >= 1 steps (e.g. 50)"),
        ("eval.patience", e.patience, e.patience is None or e.patience >= 1,
         "give a number of validations >= 1, or null for no early stopping"),
        ("run.seed", r.seed, 0 <= r.seed < 2**32, "give an integer in [0, 2**32)"),
        ("run.log_every", r.log_every, r.log_every >= 1, positive_int),
        ("run.checkpoint_every", r.checkpoint_every, r.checkpoint_every >= 1, positive_int),
        ("run.threads", r.threads, r.threads is None or r.threads >= 1, "give a thread count >= 1, or null"),
        ("data.workers", config.data.workers, config.data.workers is None or config.data.workers >= 0,
         "give a number of worker processes >= 0 (0: build batches in the training process), or null for auto"),
        ("data.cache_mb", config.data.cache_mb, config.data.cache_mb is None
         or (_finite(config.data.cache_mb) and config.data.cache_mb > 0), "give MiB > 0, or null for no bound"),
    ]
    return rules


def check_values(config: TrainConfig, prefix: str = "") -> None:
    """ConfigError naming the first value out of its range (`prefix` + key path).

    `prefix` is where the configuration sits in a larger file, e.g. "train." in a study.
    """
    for key, value, acceptable, allowed in _rules(config):
        if not acceptable:
            raise _refuse(prefix + key, value, allowed)
    if config.loss.dice == 0 and config.loss.ce == 0:
        raise ConfigError(f"{prefix}loss.dice and {prefix}loss.ce are both 0: nothing to train on; "
                          "give one a weight > 0")
    check_data_values(config.data, f"{prefix}data.")
    check_image_size(config.model.name, config.model.image_size, f"{prefix}model.image_size")


def check_data_values(data: object, prefix: str = "data.") -> None:
    """Ranges of the data values that a `DataConfig` and a study's dataset entry share
    (axis, channels, percentiles, window, empty_slices); keys are `prefix` + field name."""
    axis = getattr(data, "axis", None)
    if axis is not None and axis not in (0, 1, 2):
        raise _refuse(f"{prefix}axis", axis, "give 0 (z), 1 (y) or 2 (x)")
    channels = getattr(data, "channels", None)
    if channels is not None:
        if len(channels) not in (1, 3):
            raise _refuse(f"{prefix}channels", channels, "give 1 channel (grey) or 3 (colour), or null for all")
        for i, channel in enumerate(channels):
            if channel < 0:
                raise _refuse(f"{prefix}channels[{i}]", channel, "give channel indices >= 0 (counted from 0)")
    percentiles = getattr(data, "percentiles", None)
    if percentiles is not None:
        p = percentiles
        if len(p) != 2 or not all(_finite(v) for v in p) or not 0 <= p[0] < p[1] <= 100:
            raise _refuse(f"{prefix}percentiles", p, "give [low, high] with 0 <= low < high <= 100, e.g. [0.5, 99.5]")
        if getattr(data, "window", None) is not None:
            raise ConfigError(f"{prefix}window and {prefix}percentiles are both set; keep one")
    empty = getattr(data, "empty_slices", "keep")
    if empty not in ("keep", "drop"):
        try:
            ratio = float(empty)
        except ValueError:
            ratio = float("nan")
        if not (math.isfinite(ratio) and ratio >= 0):
            raise _refuse(f"{prefix}empty_slices", empty,
                          "give keep, drop or a ratio >= 0 of empty to non-empty slices (e.g. 0.2)")
    window = getattr(data, "window", None)
    if window is not None:
        _check_window(window, f"{prefix}window")


def _check_window(window: str, key: str) -> None:
    from samtune.data.intensity import CT_WINDOWS

    if window in CT_WINDOWS:
        return
    try:
        level, width = (float(v) for v in window.split(","))
    except ValueError:
        raise _refuse(key, window, f"give a preset ({', '.join(CT_WINDOWS)}) or 'level,width' in HU") from None
    if not (math.isfinite(level) and math.isfinite(width) and width > 0):
        raise _refuse(key, window, "give 'level,width' with a finite level and a width > 0 (e.g. '40,400')")


def check_image_size(model_name: str, image_size: int | None, key: str) -> None:
    """Input sizes the model's architecture can take (patch grid, native-only encoders)."""
    if image_size is None:
        return
    if image_size < 16:
        raise _refuse(key, image_size, "give an input size in pixels >= 16 (e.g. 256), or null for the model's own")
    from samtune.errors import UserError
    from samtune.models.registry import get_spec

    try:
        spec = get_spec(model_name)
    except UserError:
        return  # an unknown model is refused where the model is built, with close names
    if spec.family == "sam_vit" and image_size % 16:
        raise _refuse(key, image_size, f"{spec.name} cuts images into 16-pixel patches: give a multiple of 16 "
                      "(e.g. 256 or 512)")
    if spec.family == "tiny_vit" and not spec.test_only and image_size != spec.image_size:
        raise _refuse(key, image_size, f"{spec.name} runs at its native {spec.image_size} px only: "
                      "give that, or null")
