"""The one training loop: every strategy and objective, resumable, mixed precision, DDP.

Data order: for epoch e the sample order is a permutation drawn from a generator seeded
with (seed, e); optimiser step k consumes the next ``batch_size * accumulation *
world_size`` positions of that stream, rank r taking every world_size-th one. The order
is therefore a pure function of the seed and the step, so a resumed run reads exactly
the samples the uninterrupted run would have read. Each sample's augmentation and
prompt randomness is seeded by its stream position (see `engine.data`). The order is a
`torch.utils.data` Sampler read by a DataLoader (`engine.loader`): ``settings.workers``
processes build the batches ahead of the step, which changes no sample.
"""

from __future__ import annotations

import math
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

import torch
from torch import nn

from samtune.engine.distributed import DistInfo, all_reduce_mean
from samtune.engine.embedding_cache import EmbeddingCache
from samtune.engine.loader import EpochOrder, PickedItems, StepBatches, make_loader, receive, step_picks
from samtune.engine.objective import SegmentationObjective
from samtune.engine.progress import Progress
from samtune.engine.curves import plot_training_curves
from samtune.engine.run_dir import MetricsLog
from samtune.engine.schedule import build_scheduler
from samtune.engine.state import capture_rng, load_training_state, restore_rng, save_training_state
from samtune.evaluation.accumulator import mean_dice
from samtune.evaluation.metrics import DEFAULT_BOTH_EMPTY
from samtune.methods.strategy import get_strategy, trainable_parameters
from samtune.methods.tuning import train_mode
from samtune.runs.layout import RunLayout

if TYPE_CHECKING:
    import numpy as np

    from samtune.engine.objective_mim import MaskedImageObjective


@dataclass
class LoopSettings:
    steps: int
    batch_size: int = 1
    accumulation: int = 1
    lr: float = 1e-4
    weight_decay: float = 0.01
    warmup_steps: int = 0
    schedule: str = "cosine"
    clip_grad: float | None = 1.0
    eval_every: int = 50
    patience: int | None = None
    log_every: int = 10
    checkpoint_every: int = 50
    precision: str = "fp32"
    seed: int = 0
    use_cache: bool = False
    tensorboard: bool = False
    workers: int = 0  # DataLoader worker processes (engine.loader.resolve_workers picks the default)


@dataclass
class TrainResult:
    steps: int
    best_dice: float | None
    best_step: int | None
    final_dice: float | None
    wall_seconds: float
    stopped_early: bool = False
    history: list[dict[str, Any]] = field(default_factory=list)


def sample_positions(step: int, micro: int, settings: LoopSettings, n: int, dist: DistInfo) -> list[tuple[int, int]]:
    """(dataset index, stream position) of each sample of micro-batch `micro` of optimiser
    step `step` on this rank (what `engine.loader.StepBatches` yields)."""
    return step_picks(EpochOrder(n, settings.seed), step, micro, settings.batch_size, settings.accumulation,
                      dist.world_size, dist.rank)


def to_device(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    return {k: v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}


class _ObjectiveForward(nn.Module):
    """The model's forward under an objective, as one module call (what DDP wraps)."""

    def __init__(self, sam: nn.Module, objective: SegmentationObjective | MaskedImageObjective):
        super().__init__()
        self.sam = sam
        self.objective = objective

    def forward(self, batch: dict[str, Any], embeddings: torch.Tensor | None) -> torch.Tensor:
        return self.objective.logits(self.sam, batch, embeddings)


class Trainer:
    """Runs `settings.steps` optimiser steps of `objective` on `model`.

    `train_item(index, position)` returns a training sample dict (augmented with the
    randomness of stream `position`); `val_items` holds the validation samples (a list,
    or a map-style Dataset that builds item i when it is read, so validation streams slice
    by slice). Both are read through DataLoaders with `settings.workers` worker processes,
    so they must pickle where processes are spawned rather than forked.
    `save_weights(model, directory)` writes the trained weights (rank 0 only).
    """

    def __init__(
        self,
        model: nn.Module,
        objective: SegmentationObjective | MaskedImageObjective,  # the latter: PretrainTrainer
        settings: LoopSettings,
        train_item: Callable[[int, int], dict[str, Any]],
        num_train: int,
        val_items: Sequence[dict[str, Any]] | None,
        run_dir: Path,
        device: torch.device,
        dist: DistInfo,
        save_weights: Callable[[nn.Module, Path], None],
    ):
        self.core = model
        self.objective = objective
        self.settings = settings
        self.train_item = train_item
        self.num_train = num_train
        self.val_items = val_items if val_items is not None else []
        self.run_dir = run_dir
        self.device = device
        self.dist = dist
        self.save_weights = save_weights
        self.params = list(trainable_parameters(model).values())
        # DDP synchronises gradients only for computations that run through its own
        # forward, so the whole objective forward (encode + decode) is one module call.
        self.model: nn.Module = _ObjectiveForward(model, objective)
        if dist.enabled:
            from torch.nn.parallel import DistributedDataParallel

            # Some trainable heads take no part in a given objective (e.g. the IoU head, the
            # unused mask token's hypernetwork), so DDP must tolerate unused parameters.
            self.model = DistributedDataParallel(
                self.model, device_ids=[device.index] if device.type == "cuda" else None, find_unused_parameters=True
            )
        self.optimizer = torch.optim.AdamW(self.params, lr=settings.lr, weight_decay=settings.weight_decay)
        self.scheduler = build_scheduler(self.optimizer, settings.steps, settings.warmup_steps, settings.schedule)
        self.scaler = torch.amp.GradScaler(device.type, enabled=settings.precision == "fp16")
        self.cache = EmbeddingCache(model.get_submodule("image_encoder")) if settings.use_cache else None
        self.layout = RunLayout(run_dir)
        self.log = MetricsLog(self.layout.metrics_path, enabled=dist.is_main,
                              tensorboard=self.layout.tensorboard_dir if settings.tensorboard else None)
        self.progress = Progress(settings.steps, settings.log_every, enabled=dist.is_main)
        self.step = 0
        self.best_dice: float | None = None
        self.best_step: int | None = None
        self.bad_validations = 0
        self.elapsed = 0.0
        self._batches: Any = None  # iterator over the training DataLoader while train() runs
        self._val_loader: Any = None

    # ----------------------------------------------------------------- state
    def state_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "trainable": {k: v.detach().cpu().clone() for k, v in trainable_parameters(self.core).items()},
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "rng": capture_rng(),
            "best_dice": self.best_dice if self.best_dice is not None else float("nan"),
            "best_step": self.best_step if self.best_step is not None else -1,
            "bad_validations": self.bad_validations,
            "elapsed": self.elapsed,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        params = trainable_parameters(self.core)
        with torch.no_grad():
            for name, value in state["trainable"].items():
                params[name].copy_(value)
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        restore_rng(state["rng"])
        self.step = int(state["step"])
        self.best_dice = None if math.isnan(state["best_dice"]) else float(state["best_dice"])
        self.best_step = None if state["best_step"] < 0 else int(state["best_step"])
        self.progress.best_dice = self.best_dice
        self.bad_validations = int(state["bad_validations"])
        self.elapsed = float(state["elapsed"])
        self.log.truncate_after(self.step) if self.dist.is_main else None

    def save_checkpoint(self, name: str = "last") -> None:
        if self.dist.is_main:
            save_training_state(self.layout.state_file(name), self.state_dict())

    def resume(self) -> None:
        self.load_state_dict(load_training_state(self.layout.state_file("last")))

    # ------------------------------------------------------------------ loop
    def _autocast(self):
        if self.settings.precision == "fp32":
            return nullcontext()
        dtype = torch.bfloat16 if self.settings.precision == "bf16" else torch.float16
        return torch.autocast(self.device.type, dtype=dtype)

    def _train_batches(self):
        """Batches of the remaining steps, from `self.step` on (after a resume: where it stopped)."""
        s, dist = self.settings, self.dist
        order = StepBatches(self.num_train, s.seed, s.steps, s.batch_size, s.accumulation, self.step,
                            dist.world_size, dist.rank)
        return iter(make_loader(PickedItems(self.train_item), s.workers, self.device, s.seed, batch_sampler=order))

    def _val_batches(self):
        """Validation batches of one sample each, in order, built as they are read."""
        if self._val_loader is None:  # kept: its workers (and their case caches) serve every validation
            self._val_loader = make_loader(self.val_items, self.settings.workers, self.device, self.settings.seed,
                                           persistent=True)
        return self._val_loader

    def _micro_step(self, micro: int) -> float:
        batch = receive(next(self._batches), self.device)
        with self._autocast():
            embeddings = self.cache.get(batch["index"], batch["image"]) if self.cache is not None else None
            logits = self.model(batch, embeddings)
            loss = self.objective.loss(logits.float(), batch)
        self.scaler.scale(loss / self.settings.accumulation).backward()
        return float(loss.detach())

    def train(self) -> TrainResult:
        settings = self.settings
        stopped_early = False
        started = time.perf_counter() - self.elapsed
        losses: list[float] = []
        self._batches = self._train_batches()
        try:
            while self.step < settings.steps:
                train_mode(self.core, True)
                self.optimizer.zero_grad(set_to_none=True)
                step_losses = [self._micro_step(m) for m in range(settings.accumulation)]
                if settings.clip_grad:
                    self.scaler.unscale_(self.optimizer)
                    torch.nn.utils.clip_grad_norm_(self.params, settings.clip_grad)
                self.scaler.step(self.optimizer)
                self.scaler.update()
                self.scheduler.step()
                self.step += 1
                losses.append(sum(step_losses) / len(step_losses))
                self.elapsed = time.perf_counter() - started
                loss = None
                if self.step % settings.log_every == 0 or self.step == settings.steps:
                    loss = float(all_reduce_mean(torch.tensor(sum(losses) / len(losses)), self.dist))
                    self.log.write({"step": self.step, "loss": loss, "lr": self.scheduler.get_last_lr()[0],
                                    "seconds": round(self.elapsed, 2)})
                    losses = []
                self.progress.update(self.step, self.elapsed, loss)
                if len(self.val_items) and (self.step % settings.eval_every == 0 or self.step == settings.steps):
                    if self._validate():
                        stopped_early = True
                        break
                if self.step % settings.checkpoint_every == 0 or self.step == settings.steps:
                    self.save_checkpoint("last")
        except KeyboardInterrupt:
            self.save_checkpoint("last")
            self.progress.message(f"interrupted at step {self.step}; resume with: samtune train --resume {self.run_dir}")
            raise
        finally:
            self._batches = self._val_loader = None  # ends their worker processes
            self.progress.close()
            self.log.close()
        self.save_checkpoint("last")
        if self.dist.is_main:
            if self.best_step is None:  # no validation: the last weights are the result
                self.save_weights(self.core, self.layout.weights_dir)
            strategy = getattr(get_strategy(self.core), "name", None)
            plot_training_curves(self.log.records(), self.layout.curves_path,
                                 title=f"{self.run_dir.parent.name}/{self.run_dir.name}"
                                 + (f" ({strategy})" if strategy else ""))
        final = self.log.records()[-1].get("val_dice") if len(self.val_items) and self.dist.is_main else None
        return TrainResult(self.step, self.best_dice, self.best_step, final, self.elapsed, stopped_early,
                           self.log.records() if self.dist.is_main else [])

    @torch.no_grad()
    def evaluate(self) -> float:
        """Validation Dice as `samtune eval` computes it (`samtune.evaluation.mean_dice`): per
        class the mean over validation slices, both-empty slices scoring 1, then the mean
        over classes; NaN when nothing could be scored."""
        assert isinstance(self.objective, SegmentationObjective)  # PretrainTrainer validates its own way
        train_mode(self.core, False)
        pairs: list[tuple[np.ndarray, np.ndarray]] = []  # (prediction, truth) per slice
        for batch in self._val_batches():
            batch = receive(batch, self.device)
            with self._autocast():
                embeddings = self.cache.get(batch["index"], batch["image"]) if self.cache is not None else None
                logits = self.objective.logits(self.core, batch, embeddings)
            pred, truth = self.objective.predict(logits.float()).cpu().numpy(), self.objective.truth(batch).cpu().numpy()
            pairs.extend(zip(pred, truth))
        dice = mean_dice(pairs, self.objective.eval_classes, both_empty=DEFAULT_BOTH_EMPTY)
        return float("nan") if dice is None else dice

    def _validate(self) -> bool:
        """Validate, keep the best weights; True when early stopping triggers."""
        dice = self.evaluate()
        improved = self.best_dice is None or dice > self.best_dice
        if improved:
            self.best_dice, self.best_step, self.bad_validations = dice, self.step, 0
            if self.dist.is_main:
                self.save_weights(self.core, self.layout.weights_dir)
        else:
            self.bad_validations += 1
        self.log.write({"step": self.step, "val_dice": dice, "best": improved})
        self.progress.validation(self.step, dice, improved)
        patience = self.settings.patience
        return patience is not None and self.bad_validations >= patience
