"""From a training configuration to the samples the loop consumes.

Wraps `samtune.data.SliceDataset`: resolves the label map, validates the sources first
(so bad data is a clear error, not a stack trace inside the loop; the dataset is built
from the check's own reads, so each case is read once at start), and turns a sample
with N prompts into a training sample with exactly one (drawn with the sample's own
seeded generator), as the decoder takes one prompt per image. `TrainSamples` and
`EvalSamples` are what the loop's DataLoaders read (`samtune.engine.loader`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, cast

import numpy as np
import torch
from torch.utils.data import Dataset

from samtune.data.augment import AugmentConfig
from samtune.data.dataset import SliceDataset, SliceDatasetConfig
from samtune.data.labels import LabelMap, parse_label_spec
from samtune.data.intensity import Normalization, parse_window
from samtune.data.prompts import PromptConfig
from samtune.data.sources import load_source
from samtune.engine.config import DataConfig, TaskConfig
from samtune.engine.multi_data import ConcatSlices, MixedSlices, multi_source_sets
from samtune.errors import ConfigError

VAL_INDEX_OFFSET = 1 << 40  # validation samples' keys in the embedding cache


@dataclass
class TrainingData:
    train: SliceDataset | MixedSlices  # MixedSlices / ConcatSlices: several datasets (multi_data)
    val: SliceDataset | ConcatSlices | None
    labels: LabelMap
    num_classes: int
    prompts: PromptConfig | None


def _empty_policy(text: str) -> str | float:
    if text in ("keep", "drop"):
        return text
    try:
        ratio = float(text)
    except ValueError:
        raise ConfigError(f"data.empty_slices '{text}' must be keep, drop or a ratio such as 0.2") from None
    if ratio < 0:
        raise ConfigError(f"data.empty_slices ratio must be >= 0, got {ratio}")
    return ratio


def build_training_data(
    data: DataConfig, task: TaskConfig, image_size: int, normalization: Normalization, seed: int
) -> TrainingData:
    if not data.train:
        raise ConfigError("data.train is empty: set it to a list file, an nnU-Net folder or an images/+masks/ folder")
    if isinstance(data.train, list) or isinstance(data.val, list):  # several datasets (setup 2)
        prompts, config = slice_config(data, task, image_size, normalization, seed)
        mixed, concat, labels = multi_source_sets(data, task, config, seed)
        return TrainingData(mixed, concat, labels, labels.num_classes, prompts)
    source = load_source(data.train, root=data.root)
    labels = parse_label_spec(data.labels) if data.labels else (source.labels or LabelMap.binary())
    labels = labels.with_others(data.other_labels)
    prompts, config = slice_config(data, task, image_size, normalization, seed)
    train = SliceDataset.checked(source, config, labels=labels, train=True)
    val = None
    if data.val:
        val_source = load_source(data.val, root=data.root)
        val = SliceDataset.checked(val_source, config, labels=labels, train=False)
    return TrainingData(train, val, labels, labels.num_classes, prompts)


def slice_config(
    data: DataConfig, task: TaskConfig, image_size: int, normalization: Normalization, seed: int
) -> tuple[PromptConfig | None, SliceDatasetConfig]:
    """(prompt settings, slice settings) that every dataset of a run shares."""
    prompts = None
    if task.mode == "prompted":
        prompts = replace(PromptConfig.study(task.prompt), per=task.prompt_per)
    config = SliceDatasetConfig(
        image_size=image_size,
        normalization=normalization,
        axis=data.axis,
        window=parse_window(data.window),
        percentiles=cast("tuple[float, float]", tuple(data.percentiles)) if data.percentiles else None,  # checked: 2
        empty_slices=_empty_policy(data.empty_slices),
        augment=AugmentConfig() if data.augment else None,
        prompts=prompts,
        channels=tuple(data.channels) if data.channels else None,
        seed=seed,
        cache_mb=data.cache_mb,
    )
    return prompts, config


def training_sample(
    sample: dict[str, Any], prompts: PromptConfig | None, seed: int, position: int
) -> dict[str, Any]:
    """One model input from a dataset sample: image, mask, index and (prompted) one prompt.

    Prompted samples without foreground get a whole-image box and/or padding points and an
    empty target, so the model also learns to answer "nothing here"; how many such slices
    there are follows data.empty_slices.
    """
    out = {"image": sample["image"], "mask": sample["mask"], "index": torch.tensor(sample["index"])}
    if prompts is None:
        return out
    size = sample["image"].shape[-1]
    with_box = prompts.kind in ("box", "hybrid")
    with_points = prompts.kind in ("point", "hybrid")
    count = len(sample["prompt_classes"])
    if count == 0:
        out["target"] = torch.zeros_like(sample["mask"])
        out["boxes"] = torch.tensor([0.0, 0.0, size - 1.0, size - 1.0]) if with_box else None
        if with_points:
            num = max(prompts.num_points + prompts.num_negatives, 1)
            out["points"] = torch.zeros(num, 2)
            out["point_labels"] = torch.full((num,), -1, dtype=torch.int64)
        return out
    pick = int(np.random.default_rng([seed, position, 7]).integers(count))
    out["target"] = sample["prompt_masks"][pick].long()
    out["boxes"] = sample["boxes"][pick].float() if with_box else None
    if with_points:
        out["points"] = sample["points"][pick].float()
        out["point_labels"] = sample["point_labels"][pick].long()
    return out


def eval_sample(sample: dict[str, Any], prompts: PromptConfig | None, seed: int) -> dict[str, Any]:
    """Validation sample: one seeded prompt per slice, keyed apart from training samples."""
    item = training_sample(sample, prompts, seed, position=0)
    item["index"] = torch.tensor(int(sample["index"]) + VAL_INDEX_OFFSET)
    return item


class TrainSamples:
    """``item(index, position)``: training sample `index` with the randomness of stream
    `position` (its epoch's augmentation, its own prompt pick); what `Trainer` reads."""

    def __init__(self, dataset: Any, prompts: PromptConfig | None, seed: int):
        self.dataset, self.prompts, self.seed = dataset, prompts, seed

    def __call__(self, index: int, position: int) -> dict[str, Any]:
        self.dataset.set_epoch(position // len(self.dataset))
        return training_sample(self.dataset[index], self.prompts, self.seed, position)


class EvalSamples(Dataset):
    """Validation samples built when read (one slice at a time, none kept), in order."""

    def __init__(self, dataset: Any, prompts: PromptConfig | None, seed: int):
        self.dataset, self.prompts, self.seed = dataset, prompts, seed

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not 0 <= index < len(self):
            raise IndexError(index)
        return eval_sample(self.dataset[index], self.prompts, self.seed)
