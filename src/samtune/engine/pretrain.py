"""`pretrain(config, run_dir)`: masked-image pretraining of a SAM-family image encoder.

Setup 3 of the study (task-agnostic): continue training the image encoder on unlabelled
medical images, then fine-tune from it (``model.checkpoint=RUN_DIR``). The objective is
SimMIM's (see `samtune.models.mim_decoder`); the loop is the fine-tuning `Trainer`, so the
run directory has the same contract (config.yaml, run.json, metrics.jsonl, curves.png,
summary.json, state/last.pt for a bit-identical resume on CPU, DDP through torchrun).
Every ``eval.every`` steps `reconstructions.png` shows a few fixed slices: original,
masked input and reconstruction. What is exported (``weights/sam_pretrained.pth``) is the
whole model in the official key layout with only ``image_encoder.*`` changed.

BatchNorm layers (TinyViT's stem and convolutions) keep their running statistics (eval
mode) while their affine weights train: batch statistics of 1-2 images are noise, and
buffers outside the checkpoint would break the bit-identical resume.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from torch import nn

from samtune.configs import from_dict, load_yaml
from samtune.data.multi_source import SourceMix
from samtune.data.unlabeled import UnlabeledSlices, list_unlabeled
from samtune.engine.api import peak_gpu, peak_rss_mb, seed_everything
from samtune.engine.config import Device
from samtune.engine.distributed import barrier, cleanup, init_distributed, resolve_device
from samtune.engine.objective_mim import MaskedImageObjective
from samtune.engine.pretrain_config import PretrainConfig
from samtune.engine.pretrain_report import plot_pretrain_curves, plot_reconstructions
from samtune.engine.run_dir import tensorboard_available
from samtune.engine.loader import collate, resolve_workers
from samtune.engine.trainer import LoopSettings, Trainer, TrainResult, to_device
from samtune.errors import ConfigError
from samtune.methods.tuning import KEEP_EVAL, TUNING_ATTR, train_mode
from samtune.models.mim_decoder import MaskedImageModel, check_mask_geometry, random_mask
from samtune.models.registry import create_model, get_spec
from samtune.models.sam import Sam
from samtune.models.run_weights import PRETRAIN_EXPORT, PRETRAIN_RECORD
from samtune.runs import RunLayout, write_json
from samtune.runs.reading import resolve_base
from samtune.outputs import check_output_folder

_MASK_STREAM = 13  # per-position random stream of the masks (apart from the source draws)


def _check(config: PretrainConfig) -> None:
    spec = get_spec(config.model.name)
    if spec.weights.source == "user" and not config.model.checkpoint:
        raise ConfigError(f"model.checkpoint is not set: {spec.name} needs its weights file ({spec.weights.filename}) "
                          "or a pretrain run; add --set model.checkpoint=PATH")
    if not config.data.sources:
        raise ConfigError("data.sources is empty: give folders of images/volumes, list files or nnU-Net folders")
    if config.data.weights is not None and len(config.data.weights) != len(config.data.sources):
        raise ConfigError(f"data.weights has {len(config.data.weights)} values for {len(config.data.sources)} sources")
    if not 0 < config.masking.ratio < 1:
        raise ConfigError(f"masking.ratio {config.masking.ratio} must lie strictly between 0 and 1 (SimMIM used 0.6)")
    if config.optim.steps < 1 or config.optim.batch_size < 1 or config.optim.accumulation < 1:
        raise ConfigError("optim.steps, optim.batch_size and optim.accumulation must be >= 1")
    if config.data.workers is not None and config.data.workers < 0:
        raise ConfigError(f"data.workers: {config.data.workers} is out of range; give a number of worker processes "
                          ">= 0 (0: build batches in the training process), or null for auto")
    if config.eval.every < 1 or config.eval.images < 1:
        raise ConfigError("eval.every and eval.images must be >= 1")
    if config.run.precision == "fp16" and resolve_device(config.run.device).type != "cuda":
        raise ConfigError("run.precision=fp16 needs a CUDA device; use bf16 on the CPU")


PRETRAIN_METHODS = ("full", "lora", "dora")  # mergeable: the export keeps the official key layout


def _method_options(config: PretrainConfig) -> Any:
    """The strategy's options, strictly (ConfigError naming a bad one); None for full."""
    from samtune.methods.registry import get_method

    method = config.strategy.method
    if method not in PRETRAIN_METHODS:
        raise ConfigError(f"strategy.method {method!r} cannot pretrain: choose {', '.join(PRETRAIN_METHODS)} "
                          "(adapters add modules the official weights have no keys for, so they cannot be merged "
                          "into the export)")
    return get_method(method).load_options(config.strategy.options) if method != "full" else None


def _prepare_encoder(sam: Sam, method: str = "full", options: Any = None) -> None:
    """Train the image encoder only (all of it, or LoRA/DoRA branches on it); BatchNorm
    statistics stay as loaded (see module notes)."""
    sam.requires_grad_(False)
    if method == "full":
        for name, param in sam.image_encoder.named_parameters():
            param.requires_grad_(not name.startswith(("head.", "norm_head.")))  # TinyViT's unused classifier
    else:
        from samtune.methods.registry import get_method

        get_method(method).apply(sam, ("image_encoder",), options)  # its branches train, the base stays
    for module in sam.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            setattr(module, KEEP_EVAL, True)


def export_weights(sam: nn.Module, directory: Path) -> None:
    """The whole model, official key layout, as a plain state dict (torch.load-able by SAM code)."""
    from samtune.atomic import atomic_path

    from samtune.methods.merging import export_merged
    from samtune.methods.tuning import deltas

    directory.mkdir(parents=True, exist_ok=True)
    merged = export_merged(sam) if any(True for _ in deltas(sam)) else sam.state_dict()  # LoRA folded in
    state = {k: v.detach().cpu().contiguous() for k, v in merged.items()}
    with atomic_path(directory / Path(PRETRAIN_EXPORT).name) as tmp:
        torch.save(state, tmp)


class PretrainTrainer(Trainer):
    """The fine-tuning loop; validation = masked loss on fixed slices + reconstructions.png."""

    def _validate(self) -> bool:
        assert isinstance(self.objective, MaskedImageObjective)  # set by pretrain()
        train_mode(self.core, False)
        losses, rows = [], []
        with torch.no_grad():
            for item in self.val_items:
                batch = to_device(collate([item]), self.device)
                with self._autocast():
                    reconstruction = self.objective.logits(self.core, batch).float()
                losses.append(float(self.objective.loss(reconstruction, batch)))
                rows.append((batch["image"][0].cpu(), batch["mim_mask"][0].cpu(), reconstruction[0].cpu()))
        value = float(np.mean(losses))
        self.log.write({"step": self.step, "val_loss": value})
        if self.dist.is_main:
            plot_reconstructions(rows, self.objective.mask_patch, self.run_dir / "reconstructions.png", self.step)
        self.progress.message(f"step {self.step}: masked reconstruction loss on the fixed slices {value:.4f}")
        return False


class MaskedSlices:
    """Training item at stream `position`: a slice drawn from the source mix, with its mask.

    A class rather than a closure so that DataLoader workers can receive it when
    processes are spawned (not forked).
    """

    def __init__(self, datasets: list[UnlabeledSlices], mix: SourceMix, seed: int, grid: int, ratio: float):
        self.datasets, self.mix, self.seed, self.grid, self.ratio = datasets, mix, seed, grid, ratio

    def __call__(self, index: int, position: int) -> dict[str, Any]:
        dataset, number = self.mix.draw(self.seed, position)
        sample = self.datasets[dataset][number]
        mask = random_mask(self.grid, self.ratio, np.random.default_rng([self.seed, position, _MASK_STREAM]))
        return {"image": sample["image"], "valid": sample["valid"], "mim_mask": mask,
                "index": torch.tensor(position)}


def _fixed_items(datasets: list[UnlabeledSlices], count: int, seed: int, grid: int, ratio: float) -> list[dict]:
    """`count` slices spread over the middle 60% of each source's slices, each with a fixed mask.

    (Volumes' first and last slices are often empty: nothing to see in a reconstruction.)
    """
    picks: list[list[int]] = [[] for _ in datasets]
    for k in range(count):
        picks[k % len(datasets)].append(k)
    items = []
    for d, ks in enumerate(picks):
        for j, k in enumerate(ks):
            index = int((0.2 + 0.6 * (j + 0.5) / len(ks)) * len(datasets[d]))
            sample = datasets[d][index]
            mask = random_mask(grid, ratio, np.random.default_rng([seed, k, 17]))
            items.append({"image": sample["image"], "valid": sample["valid"], "mim_mask": mask,
                          "index": torch.tensor(k)})
    return items


def pretrain(
    config: PretrainConfig | None, run_dir: str | Path, overwrite: bool = False, resume: bool = False,
    device: Device | None = None,
) -> TrainResult:
    """Pretrain per `config` into `run_dir`; with `resume`, continue the run found there."""
    run_dir = Path(run_dir)
    if resume:
        config = from_dict(PretrainConfig, load_yaml(run_dir / "config.yaml"), "config")
    else:
        check_output_folder(run_dir, overwrite)
    assert config is not None
    if device is not None:
        config.run.device = device
    _check(config)
    options = _method_options(config)
    spec = get_spec(config.model.name)
    image_size = config.model.image_size or spec.image_size
    m = config.masking
    if image_size % m.patch:
        raise ConfigError(f"image size {image_size} is not divisible by masking.patch {m.patch}; "
                          "choose a patch that divides it (e.g. 32) or another model.image_size")
    # Everything that can refuse the input happens before the run directory is touched.
    found = [list_unlabeled([source]) for source in config.data.sources]
    if config.run.threads:
        torch.set_num_threads(config.run.threads)
    torch_device = resolve_device(config.run.device)
    dist = init_distributed(torch_device)
    try:
        seed_everything(config.run.seed)
        overrides: dict[str, Any] = {"image_size": config.model.image_size} if config.model.image_size else {}
        base = resolve_base(config.model.checkpoint, spec.name)  # a pretrain or setup-2 run -> its weights
        sam = cast(Sam, create_model(spec.name, checkpoint=base, pretrained=None,  # SAM family
                                     grad_checkpointing=config.model.grad_checkpointing, **overrides))
        check_mask_geometry(sam.image_encoder, image_size, m.patch, m.ratio)
        percentiles = cast("tuple[float, float]", tuple(config.data.percentiles)) if config.data.percentiles else None
        datasets = [UnlabeledSlices(images, image_size, spec.normalization, config.data.axis, percentiles)
                    for images, _ in found]
        mix = SourceMix(tuple(config.data.sources), tuple(len(d) for d in datasets),
                        tuple(config.data.weights or [1.0] * len(datasets)))
        _prepare_encoder(sam, config.strategy.method, options)
        grid_size = sam.prompt_encoder.image_embedding_size[0]
        model = MaskedImageModel(sam.image_encoder, grid_size, image_size, m.patch).to(torch_device)
        if getattr(sam, TUNING_ATTR, None) is not None:  # LoRA branches live on `sam`: train (and resume) them here
            model.encoder_tuning = getattr(sam, TUNING_ATTR)
        sam.to(torch_device)
        if not resume and dist.is_main:
            layout = RunLayout(run_dir)
            layout.create(overwrite)
            layout.write_config(config)
            write_json(run_dir / PRETRAIN_RECORD, {"format": "samtune.pretrain", "model": spec.name,
                                                   "export": PRETRAIN_EXPORT, "image_size": image_size})
            notes = [note for _, found_notes in found for note in found_notes]
            layout.write_info({"kind": "pretrain", "model": spec.name, "checkpoint": config.model.checkpoint,
                                     "sources": {s: {"images": len(d.images), "slices": len(d)}
                                                 for s, d in zip(config.data.sources, datasets)},
                                     "notes": notes, "trainable_parameters": sum(
                                         p.numel() for p in model.parameters() if p.requires_grad)})
            for note in notes:
                print(f"note: {note}")
        barrier(dist)
        mask_grid = image_size // m.patch
        seed = config.run.seed

        train_item = MaskedSlices(datasets, mix, seed, mask_grid, m.ratio)
        o, r = config.optim, config.run
        settings = LoopSettings(
            steps=o.steps, batch_size=o.batch_size, accumulation=o.accumulation, lr=o.lr, weight_decay=o.weight_decay,
            warmup_steps=o.warmup_steps, schedule=o.schedule, clip_grad=o.clip_grad, eval_every=config.eval.every,
            log_every=r.log_every, checkpoint_every=r.checkpoint_every, precision=r.precision, seed=seed,
            tensorboard=r.tensorboard == "on" or (r.tensorboard == "auto" and tensorboard_available()),
            workers=resolve_workers(config.data.workers, torch_device),
        )
        fixed = _fixed_items(datasets, config.eval.images, seed, mask_grid, m.ratio)
        objective = MaskedImageObjective(m.patch, m.norm_target)
        trainer = PretrainTrainer(model, objective, settings, train_item, sum(mix.sizes), fixed, run_dir,
                                  torch_device, dist, lambda _core, directory: export_weights(sam, directory))
        if resume:
            trainer.resume()
        result = trainer.train()
        if dist.is_main:
            records = trainer.log.records()
            plot_pretrain_curves(records, run_dir / "curves.png")
            drawn = o.steps * o.batch_size * o.accumulation * dist.world_size
            losses = [rec["loss"] for rec in records if "loss" in rec]
            val = [rec["val_loss"] for rec in records if "val_loss" in rec]
            write_json(run_dir / "summary.json", {
                "kind": "pretrain", "steps": result.steps, "final_loss": losses[-1] if losses else None,
                "first_val_loss": val[0] if val else None, "final_val_loss": val[-1] if val else None,
                "train_seconds": round(result.wall_seconds, 2),
                "seconds_per_step": round(result.wall_seconds / max(result.steps, 1), 3),
                "peak_rss_mb": round(peak_rss_mb(), 1), **peak_gpu(torch_device),
                "draws_per_source": mix.counts(seed, drawn), "export": PRETRAIN_EXPORT,
            })
        return result
    finally:
        cleanup(dist)
