"""The loop's data on `torch.utils.data`: the sample order as a Sampler, DataLoaders that read it.

Order: for epoch e the sample order is a permutation of the n training samples drawn
from a generator seeded with ``seed * 100_003 + e``; micro-batch ``micro`` of optimiser
step ``step`` takes the next ``batch_size * world_size`` positions of that endless
stream, rank r every world_size-th one. `StepBatches` yields those picks, (dataset
index, stream position) pairs, from any step on, so a resumed run reads exactly the
samples the uninterrupted run would have read.

Workers: a sample's randomness (augmentation, prompt draws) is seeded by its own index
and stream position (`samtune.data.dataset`, `samtune.engine.data`), never drawn from a
process-global generator, so which process builds it does not matter: ``workers=0`` and
``workers=2`` give the same batches in the same order. The loaders carry their own seeded
``generator``: torch draws each iterator's base seed from it (it seeds the workers'
global RNGs with it) instead of from the global torch RNG, which the training loop's
state, and so a bit-identical resume, depends on.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator, Sequence

import torch
from torch.utils.data import DataLoader, Dataset, Sampler, get_worker_info

from samtune.data.preprocess import PendingImage

Pick = tuple[int, int]  # (dataset index, stream position)


class EpochOrder:
    """Dataset index at each stream position; keeps the permutation of the latest epoch."""

    def __init__(self, n: int, seed: int):
        self.n, self.seed = int(n), int(seed)
        self._epoch, self._order = -1, torch.empty(0, dtype=torch.int64)

    def __call__(self, position: int) -> int:
        epoch, offset = divmod(position, self.n)
        if epoch != self._epoch:
            generator = torch.Generator().manual_seed(self.seed * 100_003 + epoch)
            self._epoch, self._order = epoch, torch.randperm(self.n, generator=generator)
        return int(self._order[offset])


def step_picks(order: EpochOrder, step: int, micro: int, batch_size: int, accumulation: int,
               world_size: int = 1, rank: int = 0) -> list[Pick]:
    """Picks of micro-batch `micro` of optimiser step `step` on rank `rank`."""
    global_batch = batch_size * world_size
    start = (step * accumulation + micro) * global_batch
    return [(order(position), position) for position in range(start + rank, start + global_batch, world_size)]


class StepBatches(Sampler[list[Pick]]):
    """The micro-batches of steps ``start_step .. steps - 1`` on one rank, in loop order."""

    def __init__(self, n: int, seed: int, steps: int, batch_size: int, accumulation: int = 1,
                 start_step: int = 0, world_size: int = 1, rank: int = 0):
        self.n, self.seed, self.steps, self.start_step = n, seed, steps, start_step
        self.batch_size, self.accumulation, self.world_size, self.rank = batch_size, accumulation, world_size, rank

    def __len__(self) -> int:
        return max(self.steps - self.start_step, 0) * self.accumulation

    def __iter__(self) -> Iterator[list[Pick]]:
        order = EpochOrder(self.n, self.seed)
        for step in range(self.start_step, self.steps):
            for micro in range(self.accumulation):
                yield step_picks(order, step, micro, self.batch_size, self.accumulation, self.world_size, self.rank)


class PickedItems(Dataset):
    """``dataset[(index, position)] = item(index, position)``: what a `StepBatches` reads."""

    def __init__(self, item: Callable[[int, int], dict[str, Any]]):
        self.item = item

    def __getitem__(self, pick: Pick) -> dict[str, Any]:
        return self.item(*pick)


def _stack(values: list[torch.Tensor]) -> torch.Tensor:
    """torch.stack; in a worker process straight into shared memory, as torch's default
    collate does, so sending the batch to the loop copies no pixels again."""
    if get_worker_info() is None:
        return torch.stack(values)
    first = values[0]
    storage = first._typed_storage()._new_shared(sum(v.numel() for v in values), device=first.device)
    out = first.new(storage).resize_(len(values), *first.shape)
    return torch.stack(values, out=out)


NARROWED = "_sent_as_uint8"  # keys of int64 maps a worker sent as uint8; `receive` restores them


def _fits_uint8(values: list[torch.Tensor]) -> bool:
    """Large int64 maps (masks, targets [S,S]) whose values all lie in 0..255."""
    return values[0].dtype == torch.int64 and values[0].numel() >= 4096 and all(
        int(v.min()) >= 0 and int(v.max()) <= 255 for v in values)


def receive(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    """A batch as the model reads it, on `device`: tensors moved; what a worker sent in a
    compact form (`PendingImage` lists, uint8 class maps) moved in that form, then built
    or widened there (same values as building them in the worker)."""
    narrowed = batch.get(NARROWED, [])
    out: dict[str, Any] = {}
    for key, value in batch.items():
        if key == NARROWED:
            continue
        if isinstance(value, torch.Tensor):
            value = value.to(device, non_blocking=True)
            out[key] = value.long() if key in narrowed else value
        elif isinstance(value, list) and value and isinstance(value[0], PendingImage):
            stacked = torch.empty(len(value), *value[0].shape, dtype=torch.float32, device=device)
            for row, image in enumerate(value):
                image.build(device, out=stacked[row])
            out[key] = stacked
        else:
            out[key] = value
    return out


def collate(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Tensors stacked, None kept, anything else as a list.

    In a worker process, int64 class maps with values 0..255 travel as uint8 (a 1024 px
    mask is 8 MiB as int64, 1 MiB as uint8) and images as `PendingImage` lists (the
    dataset makes them there): allocating the shared memory a sample crosses in costs
    about as much CPU as building it (BENCHMARKS.md). The receiver calls `receive`.
    """
    batch: dict[str, Any] = {}
    in_worker = get_worker_info() is not None
    narrowed = []
    for key in items[0]:
        values = [item[key] for item in items]
        if isinstance(values[0], torch.Tensor):
            if in_worker and _fits_uint8(values):
                values = [v.to(torch.uint8) for v in values]
                narrowed.append(key)
            batch[key] = _stack(values)
        elif values[0] is None:
            batch[key] = None
        else:
            batch[key] = values
    if narrowed:
        batch[NARROWED] = narrowed
    return batch


def resolve_workers(workers: int | None, device: torch.device) -> int:
    """Worker processes for `data.workers`: None means 2 on CUDA and 0 on the CPU.

    On the CPU the model's own threads already use the cores; workers would compete with
    them for the same cores (BENCHMARKS.md, "Data path on torch.utils.data").
    """
    if workers is not None:
        return int(workers)
    return 2 if device.type == "cuda" else 0


def make_loader(dataset: Dataset | Sequence[dict[str, Any]], workers: int, device: torch.device, seed: int,
                batch_sampler: Sampler | None = None, persistent: bool = False) -> DataLoader:
    """A DataLoader with the loop's collate, pinned memory on CUDA and a seeded generator.

    Without `batch_sampler` it reads `dataset` in order, one item per batch (validation).
    """
    options: dict[str, Any] = {"batch_sampler": batch_sampler} if batch_sampler is not None else {
        "batch_size": 1, "shuffle": False}
    if workers > 0:
        options.update(prefetch_factor=2, persistent_workers=persistent)
    return DataLoader(dataset, num_workers=workers, collate_fn=collate,  # type: ignore[arg-type]  # a list is a map-style dataset
                      pin_memory=device.type == "cuda", generator=torch.Generator().manual_seed(seed), **options)
