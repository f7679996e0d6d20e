"""`train(config, run_dir)`: configuration in, run directory out (the library call behind
`samtune train`)."""

from __future__ import annotations

import random
import resource
from dataclasses import asdict
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from torch import nn

from samtune.configs import from_dict
from samtune.engine.config import Device, TrainConfig, check_values
from samtune.engine.data import EvalSamples, TrainSamples, build_training_data
from samtune.engine.distributed import barrier, cleanup, init_distributed, resolve_device
from samtune.engine.loader import resolve_workers
from samtune.engine.objective import make_objective
from samtune.engine.run_dir import tensorboard_available
from samtune.engine.trainer import LoopSettings, Trainer, TrainResult
from samtune.engine.unet_setup import check_unet_config, plan_for_training
from samtune.errors import ConfigError, UserError
from samtune.methods.checkpoint import save_tuning
from samtune.methods.registry import get_method
from samtune.methods.strategy import Strategy, apply_strategy, parameter_count
from samtune.models.registry import create_model, get_spec
from samtune.outputs import check_output_folder
from samtune.runs import RunDir, RunLayout
from samtune.runs.reading import resolve_base

PRETRAINED_MASK_OUTPUTS = 3  # SAM's decoder: 3 multimask tokens (+1 single-mask token)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def build_strategy(config: TrainConfig) -> Strategy:
    """The strategy of a configuration; its options load strictly into the method's own
    dataclass (an option the method does not take is a ConfigError naming it)."""
    s = config.strategy
    if get_spec(config.model.name).family == "unet":  # a baseline from scratch: every weight trains
        return Strategy(backbone=config.model.name, component="encoder+decoder", method="full")
    options = get_method(s.method).load_options(s.options)
    return Strategy(backbone=config.model.name, component=s.component, method=s.method, options=options)


def model_overrides(config: TrainConfig, num_classes: int) -> dict[str, Any]:
    """Builder arguments that a run needs to rebuild its model (saved with the weights)."""
    overrides: dict[str, Any] = {}
    if config.model.image_size is not None:
        overrides["image_size"] = config.model.image_size
    if config.task.mode == "automatic":
        overrides["num_multimask_outputs"] = num_classes + 1
    return overrides


def heads_change(config: TrainConfig, overrides: dict[str, Any]) -> bool:
    """Whether the decoder's output heads must train: always in automatic mode.

    There each mask output means one class, not one of SAM's granularities (whole, part,
    sub-part), so the heads learn a new task even when the count happens to equal SAM's 3
    multimask outputs (2 foreground classes + background). Prompted runs keep SAM's
    single-mask output and its meaning; their heads follow the method.
    """
    return config.task.mode == "automatic" or (
        overrides.get("num_multimask_outputs", PRETRAINED_MASK_OUTPUTS) != PRETRAINED_MASK_OUTPUTS
    )


def _check(config: TrainConfig) -> None:
    spec = get_spec(config.model.name)
    if config.model.deep_supervision and spec.family != "unet":
        raise ConfigError(f"model.deep_supervision=true with model.name={config.model.name}: deep supervision is an "
                          "option of the U-Net baseline (model.name=unet) only; remove it")
    if spec.family == "unet":
        check_unet_config(config.task.mode, config.strategy.method, config.model.checkpoint,
                          config.run.cache_embeddings)
    if spec.weights.source == "user" and not config.model.checkpoint:
        raise ConfigError(
            f"model.checkpoint is not set: {spec.name} needs its weights file "
            f"({spec.weights.filename}); add --set model.checkpoint=PATH"
        )
    if config.run.precision == "fp16" and resolve_device(config.run.device).type != "cuda":
        raise ConfigError("run.precision=fp16 needs a CUDA device; use bf16 on the CPU")
    check_values(config)  # every ranged value (lr > 0, eval.every >= 1, ...), named by its key
    if config.run.tensorboard == "on" and not tensorboard_available():
        raise ConfigError("run.tensorboard=on but the tensorboard package is not installed: "
                          "pip install tensorboard, or set run.tensorboard=auto")
    if config.run.cache_embeddings == "memory" and config.strategy.component != "decoder":
        raise ConfigError("run.cache_embeddings=memory needs strategy.component=decoder (a frozen image encoder)")
    if config.run.cache_embeddings == "memory" and config.data.augment:
        raise ConfigError("run.cache_embeddings=memory cannot be combined with data.augment (images change each epoch)")


def peak_rss_mb() -> float:
    """Peak resident memory of this process in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def peak_gpu(device: torch.device) -> dict[str, float]:
    """Peak CUDA memory allocated by tensors on `device`, in MiB (nothing on the CPU)."""
    if device.type != "cuda":
        return {}
    return {"peak_gpu_mb": round(torch.cuda.max_memory_allocated(device) / 2**20, 1)}



def resumable_config(run_dir: str | Path) -> TrainConfig:
    """The saved configuration of a run that `--resume` can continue; UserError naming the
    missing or damaged file otherwise (config.yaml, state/last.pt)."""
    layout = RunLayout(Path(run_dir))
    config = from_dict(TrainConfig, RunDir.open(run_dir).config_data(), str(layout.config_path))
    if not layout.has_checkpoint():
        raise UserError(f"{layout.state_file('last')}: missing, nothing to resume; start the run again with "
                        f"samtune train CONFIG --out {layout.path} --overwrite")
    return config

def train(
    config: TrainConfig | None, run_dir: str | Path, overwrite: bool = False, resume: bool = False,
    device: Device | None = None,
) -> TrainResult:
    """Train per `config` into `run_dir`; with `resume`, continue the run found there.

    Validate, then write: the output folder, the configuration, every data file, the model
    and its checkpoint and the method's options are checked before the run directory is
    created, so a refused run leaves the file system as it was (no --overwrite needed on
    the rerun). `device` (auto | cpu | cuda) replaces the configuration's run.device, e.g.
    to resume on another machine; bit-identical resumption holds on the same device only.
    """
    layout = RunLayout(Path(run_dir))
    if resume:
        config = resumable_config(run_dir)
    assert config is not None
    if device is not None:
        config.run.device = device
    _check(config)
    if get_spec(config.model.name).family == "unet":
        # A U-Net from scratch trains every weight; config.yaml records that, as tuning.json does.
        config.strategy.component = "encoder+decoder"
    strategy = build_strategy(config)  # the method's options, strictly
    if config.run.threads:
        torch.set_num_threads(config.run.threads)
    torch_device = resolve_device(config.run.device)
    dist = init_distributed(torch_device)
    try:
        if not resume and dist.is_main:  # other ranks could see the folder rank 0 has just created
            check_output_folder(layout.path, overwrite)
        seed_everything(config.run.seed)
        spec = get_spec(config.model.name)
        image_size = config.model.image_size or spec.image_size
        data = build_training_data(config.data, config.task, image_size, spec.normalization, config.run.seed)
        overrides = model_overrides(config, data.num_classes)
        if spec.family == "unet":  # architecture planned from the training slices (nnU-Net style)
            overrides.update(plan_for_training(data, spec, config.model.image_size))
            if config.model.deep_supervision:  # its heads are weights: the run rebuilds them on load
                overrides["deep_supervision"] = True
        base = resolve_base(config.model.checkpoint, config.model.name)  # a pretrain or setup-2 run -> its weights
        model = create_model(config.model.name, checkpoint=base, pretrained=None,
                             grad_checkpointing=config.model.grad_checkpointing, **overrides)
        # a U-Net has no pretrained heads to resize
        apply_strategy(model, strategy, num_classes_changed=heads_change(config, overrides) and spec.family != "unet")
        model.to(torch_device)
        trainable, total = parameter_count(model)
        r = config.run
        # Built slice by slice as validation reads them: memory does not grow with their number.
        val_items = EvalSamples(data.val, data.prompts, r.seed) if data.val else None
        # Everything is validated: only now is anything written.
        if not resume and dist.is_main:
            layout.create(overwrite)
            layout.write_config(config)
            layout.write_info({"model": spec.name, "strategy": strategy.name, "labels": list(data.labels.classes),
                               "label_map": data.labels.describe(),
                               "trainable_parameters": trainable, "total_parameters": total,
                               "train_slices": len(data.train),
                               "val_slices": len(data.val) if data.val else 0, "model_overrides": overrides})
        barrier(dist)
        objective = make_objective(config.task.mode, data.num_classes, config.loss.dice, config.loss.ce)
        use_cache = config.run.cache_embeddings == "memory" or (
            config.run.cache_embeddings == "auto" and config.strategy.component == "decoder" and not config.data.augment
        )
        use_cache = use_cache and spec.family != "unet"  # the U-Net has no frozen encoder to cache
        o, r = config.optim, config.run
        settings = LoopSettings(
            steps=o.steps, batch_size=o.batch_size, accumulation=o.accumulation, lr=o.lr, weight_decay=o.weight_decay,
            warmup_steps=o.warmup_steps, schedule=o.schedule, clip_grad=o.clip_grad, eval_every=config.eval.every,
            patience=config.eval.patience, log_every=r.log_every, checkpoint_every=r.checkpoint_every,
            precision=r.precision, seed=r.seed, use_cache=use_cache,
            tensorboard=r.tensorboard == "on" or (r.tensorboard == "auto" and tensorboard_available()),
            workers=resolve_workers(config.data.workers, torch_device),
        )
        train_ds = data.train
        train_item = TrainSamples(train_ds, data.prompts, r.seed)

        def save_weights(trained: nn.Module, directory: Path) -> None:
            save_tuning(trained, directory, overrides=overrides)

        # EvalSamples is a sized, indexable Dataset: the sequence the trainer reads
        trainer = Trainer(model, objective, settings, train_item, len(train_ds), cast(Any, val_items), layout.path, torch_device, dist,
                          save_weights)
        if resume:
            trainer.resume()
        result = trainer.train()
        if dist.is_main:
            layout.write_summary({
                "steps": result.steps, "best_val_dice": result.best_dice, "best_step": result.best_step,
                "final_val_dice": result.final_dice, "train_seconds": round(result.wall_seconds, 2),
                "peak_rss_mb": round(peak_rss_mb(), 1), **peak_gpu(torch_device), "trainable_parameters": trainable,
                "total_parameters": total, "stopped_early": result.stopped_early, "strategy": strategy.name,
                "embedding_cache": use_cache, "data_workers": settings.workers, "config": asdict(config),
                # several training sources (engine.multi_data): samples drawn from each
                **({"draws_per_dataset": data.train.draw_counts(
                    result.steps * o.batch_size * o.accumulation * dist.world_size, r.seed)}
                   if hasattr(data.train, "draw_counts") else {}),
            })
        return result
    finally:
        cleanup(dist)
