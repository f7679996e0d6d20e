"""Training on several datasets at once (setup 2 of the study, "task-expansive").

``data.train`` (and ``data.val``) may list several sources, each with its own label map
and sampling weight. Training draws, for each sample, a dataset (uniformly by default,
else by weight) and then one of its slices (`samtune.data.multi_source`), so a large
dataset does not drown a small one. In prompted mode every class of every dataset is a
binary prompted target, so datasets with unrelated label sets train together. Automatic
mode predicts one set of classes, so it needs every source to share one label map.

Validation concatenates the validation sources (every slice once).
"""

from __future__ import annotations

import numpy as np
import torch

from samtune.data.dataset import SliceDataset, SliceDatasetConfig
from samtune.data.labels import LabelMap, parse_label_spec
from samtune.data.multi_source import SourceMix
from samtune.data.sources import load_source
from samtune.engine.config import DataConfig, DataSource, TaskConfig
from samtune.errors import ConfigError


class MixedSlices:
    """Several `SliceDataset`s behind one index: what the loop's sample order reads.

    Index ``i`` of epoch ``e`` is drawn as stream position ``e * len(self) + i`` of the
    source mix, so every (epoch, index) pair is an independent, reproducible draw. A
    sample's ``index`` (the embedding cache key) is its slice's place in the concatenation.
    """

    def __init__(self, datasets: list[SliceDataset], mix: SourceMix, seed: int):
        self.datasets = datasets
        self.mix = mix
        self.seed = seed
        self.offsets = np.cumsum([0] + [len(d) for d in datasets])
        self.epoch = 0

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)
        for dataset in self.datasets:
            dataset.set_epoch(epoch)

    def locate(self, index: int, epoch: int | None = None) -> tuple[int, int]:
        """(dataset number, slice number) that `index` of `epoch` draws."""
        epoch = self.epoch if epoch is None else epoch
        return self.mix.draw(self.seed, epoch * len(self) + index)

    def __getitem__(self, index: int) -> dict:
        dataset, number = self.locate(index)
        sample = dict(self.datasets[dataset][number])
        sample["index"] = int(self.offsets[dataset]) + number
        return sample

    def draw_counts(self, positions: int, order_seed: int) -> dict[str, int]:
        """Samples each dataset gave to the first `positions` stream positions of a run.

        Repeats the loop's order (`engine.loader.StepBatches`: epoch permutations
        seeded with ``order_seed * 100_003 + epoch``), then this class's draws.
        """
        n = len(self)
        tally = dict.fromkeys(self.mix.names, 0)
        for epoch in range((positions + n - 1) // n):
            generator = torch.Generator().manual_seed(order_seed * 100_003 + epoch)
            order = torch.randperm(n, generator=generator)[: positions - epoch * n].tolist()
            for index in order:
                tally[self.mix.names[self.locate(index, epoch)[0]]] += 1
        return tally


class ConcatSlices:
    """Validation sources one after another (every slice once)."""

    def __init__(self, datasets: list[SliceDataset]):
        self.datasets = datasets
        self.offsets = np.cumsum([0] + [len(d) for d in datasets])

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def __getitem__(self, index: int) -> dict:
        dataset = int(np.searchsorted(self.offsets, index, side="right") - 1)
        sample = dict(self.datasets[dataset][index - int(self.offsets[dataset])])
        sample["index"] = index
        return sample


def _as_sources(value: str | list[DataSource] | None) -> list[DataSource]:
    if value is None or value == "":
        return []
    return [DataSource(path=value)] if isinstance(value, str) else list(value)


def _datasets(sources: list[DataSource], data: DataConfig, config, train: bool, where: str
              ) -> tuple[list[SliceDataset], list[LabelMap]]:
    datasets, label_maps = [], []
    for i, spec in enumerate(sources):
        if not spec.path:
            raise ConfigError(f"{where}[{i}].path is empty: give a list file, an nnU-Net folder or an images/+masks/ folder")
        source = load_source(spec.path, root=data.root)
        text = spec.labels or data.labels
        labels = parse_label_spec(text) if text else (source.labels or LabelMap.binary())
        if not labels.is_binary:  # e.g. organs a TotalSegmentator map holds beyond those named
            labels = labels.with_others(data.other_labels)
        datasets.append(SliceDataset.checked(source, config, labels=labels, train=train))
        label_maps.append(labels)
    return datasets, label_maps


def multi_source_sets(data: DataConfig, task: TaskConfig, config: SliceDatasetConfig, seed: int
                      ) -> tuple[MixedSlices, ConcatSlices | None, LabelMap]:
    """(train, val, label map) of a run on several sources, for `engine.data.build_training_data`:
    the train set a `MixedSlices`, val a `ConcatSlices`; `config` is the run's `slice_config`."""
    train_sources, val_sources = _as_sources(data.train), _as_sources(data.val)
    train_sets, train_labels = _datasets(train_sources, data, config, True, "data.train")
    val_sets, val_labels = _datasets(val_sources, data, config, False, "data.val")
    if task.mode == "automatic":
        shared = train_labels[0].classes
        for spec, labels in zip(train_sources + val_sources, train_labels + val_labels):
            if labels.classes != shared:
                raise ConfigError(
                    f"automatic mode with several sources needs one shared label map: {spec.path} has classes "
                    f"{list(labels.classes)}, {train_sources[0].path} has {list(shared)}; give every source the "
                    "same labels (data.train[i].labels) or train with task.mode=prompted"
                )
        labels = train_labels[0]
    else:  # prompted: every class of every dataset is a binary target
        labels = LabelMap.binary("target")
    mix = SourceMix(tuple(s.path for s in train_sources), tuple(len(d) for d in train_sets),
                    tuple(float(s.weight) for s in train_sources))
    val = ConcatSlices(val_sets) if val_sets else None
    return MixedSlices(train_sets, mix, seed), val, labels
