"""A torch Dataset of 2D training / evaluation samples in the model's input frame.

Pipeline per sample (volumes are read once per case and kept in a bounded LRU cache,
not read once per slice):

    read case -> map labels -> pick slices (training: empty-slice policy)
    -> slice -> normalise (one intensity range per case) -> augment (training, seeded)
    -> resize + pad to S x S -> prompts from the model-frame mask (seeded)

Every sample is a dict:

    image          float32 [3,S,S]   normalised for the model's weights
    mask           int64   [S,S]     classes 0..K, nearest-resized, 0 in the padding
    boxes          float32 [N,4]     (x0, y0, x1, y1), model-frame pixels   } when prompts
    points         float32 [N,P,2]   (x, y), model-frame pixels             } are asked
    point_labels   int64   [N,P]     1 positive, 0 negative, -1 padding     } for (kind
    prompt_classes int64   [N]       class asked for by each prompt         } decides
    prompt_masks   bool    [N,S,S]   target region of each prompt           } boxes/points)
    ref            SliceRef          case, axis, slice index, geometry
    transform      ResizePad         original <-> model frame (unaugmented samples)
    index          int               position in the dataset

Determinism: sample ``i`` in epoch ``e`` draws from ``np.random.default_rng([seed, e, i])``;
call `set_epoch` each epoch for fresh augmentations. Same seed, epoch and index: same sample.

Reading: building the dataset reads every case once to list its slices (and, for
training, to apply the empty-slice policy). `SliceDataset.checked` does that in the same
pass as the data check (`samtune.data.validate.check_source`), so a case is read once at
start, not twice. Prepared cases stay in an LRU cache bounded by ``cache_cases`` and
``cache_mb``; a case evicted from it is read again when one of its slices is asked for.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, get_worker_info

from samtune.data.augment import AugmentConfig, apply_augment, sample_params
from samtune.data.case_io import CaseData, read_case, select_channels
from samtune.data.labels import LabelMap, require_integer_labels
from samtune.data.preprocess import Normalization, ResizePad, intensity_range, scale_intensity
from samtune.data.prompts import PromptConfig, prompts_from_mask
from samtune.data.slicing import (
    EmptySlicePolicy,
    SliceRef,
    foreground_per_slice,
    select_slices,
    slice_refs,
    take_slice,
)
from samtune.data.sources import Case, Source
from samtune.errors import DataError


@dataclass(frozen=True)
class SliceDatasetConfig:
    """How cases become model-ready 2D samples.

    Attributes:
        image_size: S, side of the model's square input (1024 SAM, 256 LiteMedSAM).
        normalization: "imagenet" or "minmax", chosen by the model's weights.
        axis: array axis volumes are sliced across (0 = z: [y, x] slices).
        window: CT window (level, width), or None.
        percentiles: MR clipping percentiles, e.g. (0.5, 99.5), or None.
        empty_slices: training policy for slices without foreground: "keep", "drop" or a
            ratio (see `samtune.data.slicing.select_slices`). Ignored when ``train=False``.
        augment: augmentation ranges, or None for none. Only used when ``train=True``.
        prompts: how prompts are drawn from masks, or None for automatic (no-prompt) mode.
        channels: which image channels to use (e.g. (0,) or (0, 1, 2)); None: all, which
            must be 1 or 3 (2D photos may add an alpha channel, which is dropped).
        seed: base seed for slice sampling, augmentation and prompts.
        cache_cases: how many read cases to keep in memory at most (None: no count bound).
        cache_mb: memory the kept cases may take at most, MiB of prepared arrays (None:
            no size bound). The most recently used case always stays, whatever its size.
            Each DataLoader worker process keeps its own cache.
    """

    image_size: int
    normalization: Normalization
    axis: int = 0
    window: tuple[float, float] | None = None
    percentiles: tuple[float, float] | None = None
    empty_slices: EmptySlicePolicy = "keep"
    augment: AugmentConfig | None = None
    prompts: PromptConfig | None = None
    channels: tuple[int, ...] | None = None
    seed: int = 0
    cache_cases: int | None = None
    cache_mb: float | None = 1024.0


@dataclass
class _Prepared:
    """A case after label mapping and channel selection, ready to slice."""

    image: np.ndarray  # [y,x,C] / [z,y,x,C], C in (1, 3)
    classes: np.ndarray  # [y,x] / [z,y,x] class ids
    value_range: tuple[float, float]
    refs: list[SliceRef] = field(default_factory=list)

    @property
    def nbytes(self) -> int:
        return int(self.image.nbytes + self.classes.nbytes)


class SliceDataset(Dataset):
    """2D samples from the cases of a source (see the module docstring for the fields).

    Args:
        cases: a `Source` (its labelled cases) or a list of `Case`.
        labels: how stored mask values become classes; defaults to the source's declared
            labels, else binary.
        config: `SliceDatasetConfig`.
        train: True applies the empty-slice policy and augmentation; False keeps every
            slice and never augments (evaluation).
    """

    def __init__(
        self,
        cases: Source | list[Case],
        config: SliceDatasetConfig,
        labels: LabelMap | None = None,
        train: bool = True,
    ) -> None:
        self._start(cases, config, labels, train)
        for case_index, case in enumerate(self.cases):
            self._add_case(case_index, read_case(case))
        self._finish()

    @classmethod
    def checked(
        cls, source: Source, config: SliceDatasetConfig, labels: LabelMap | None = None, train: bool = True
    ) -> SliceDataset:
        """Check ``source`` (`check_source`) and build the dataset from the same reads.

        Raises DataError with the check's first fatal problem, as `Report.raise_if_fatal`.
        """
        from samtune.data.validate import check_source

        dataset = cls.__new__(cls)
        dataset._start(source, config, labels, train)
        check_source(source, dataset.labels, config.axis, config.channels,
                     on_case=dataset._add_case).raise_if_fatal()
        dataset._finish()
        return dataset

    def _start(self, cases: Source | list[Case], config: SliceDatasetConfig, labels: LabelMap | None,
               train: bool) -> None:
        if isinstance(cases, Source):
            labels = labels or cases.labels
            cases = cases.cases
        if not cases:
            raise DataError("no cases to build a dataset from")
        self.cases = list(cases)
        self.labels = labels or LabelMap.binary()
        self.config = config
        self.train = train
        self.epoch = 0
        self._cache: OrderedDict[int, _Prepared] = OrderedDict()
        self._slices: dict[int, list[SliceRef]] = {}  # case index -> its chosen slices
        self.refs: list[SliceRef] = []
        self._case_of: list[int] = []

    def _add_case(self, case_index: int, data: CaseData) -> None:
        """List the slices of case ``case_index`` (read as ``data``) and cache it."""
        prepared = self._prepared_from(case_index, data)
        self._remember(case_index, prepared)
        has_fg = foreground_per_slice(prepared.classes, prepared.refs[0].axis)
        if self.train:
            rng = np.random.default_rng([self.config.seed, case_index])
            chosen: Sequence[int] = select_slices(has_fg, self.config.empty_slices, rng)
        else:
            chosen = range(len(prepared.refs))
        self._slices[case_index] = [prepared.refs[i] for i in chosen]

    def _finish(self) -> None:
        for case_index in range(len(self.cases)):  # in case order, whatever order they were read in
            chosen = self._slices[case_index]
            self.refs.extend(chosen)
            self._case_of.extend([case_index] * len(chosen))
        del self._slices
        if not self.refs:
            raise DataError(
                f"no slices left after the empty-slice policy {self.config.empty_slices!r}: "
                "no mask holds foreground; check the label mapping"
            )

    def _prepared_from(self, case_index: int, data: CaseData) -> _Prepared:
        case = self.cases[case_index]
        assert data.mask is not None  # cases are read with their masks (a case without one is refused)
        require_integer_labels(data.mask, self.labels, str(case.mask))
        classes = self.labels.apply(data.mask, where=str(case.mask))
        image = select_channels(data, self.config.channels)
        cfg = self.config
        value_range = intensity_range(
            image, cfg.window, cfg.percentiles, keep_uint8=cfg.normalization == "imagenet"
        )
        refs = slice_refs(case.case_id, data.spatial_shape, data.geometry, cfg.axis)
        return _Prepared(image, classes, value_range, refs)

    def _remember(self, case_index: int, prepared: _Prepared) -> None:
        """Keep ``prepared`` as the most recent entry; evict the oldest past either bound."""
        self._cache[case_index] = prepared
        self._cache.move_to_end(case_index)
        count, megabytes = self.config.cache_cases, self.config.cache_mb
        while len(self._cache) > 1 and (
            (count is not None and len(self._cache) > max(count, 1))
            or (megabytes is not None and self.cached_bytes > megabytes * 2**20)
        ):
            self._cache.popitem(last=False)

    @property
    def cached_bytes(self) -> int:
        """Bytes of the prepared cases held in the cache now."""
        return sum(p.nbytes for p in self._cache.values())

    def _prepare(self, case_index: int) -> _Prepared:
        if case_index in self._cache:
            self._cache.move_to_end(case_index)
            return self._cache[case_index]
        prepared = self._prepared_from(case_index, read_case(self.cases[case_index]))
        self._remember(case_index, prepared)
        return prepared

    def __len__(self) -> int:
        return len(self.refs)

    def set_epoch(self, epoch: int) -> None:
        """Use epoch-specific augmentation / prompt draws."""
        self.epoch = int(epoch)

    def case_of(self, index: int) -> Case:
        """The case sample ``index`` comes from."""
        return self.cases[self._case_of[index]]

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < len(self.refs):
            raise IndexError(index)
        ref = self.refs[index]
        prepared = self._prepare(self._case_of[index])
        cfg = self.config
        rng = np.random.default_rng([cfg.seed, self.epoch, index])
        # Gray stays one channel through augmentation and resizing; the per-channel
        # normalisation is applied after the resize (it commutes with bilinear resizing).
        image = scale_intensity(
            take_slice(prepared.image, ref.axis, ref.index), cfg.normalization, value_range=prepared.value_range
        )
        mask = np.ascontiguousarray(take_slice(prepared.classes, ref.axis, ref.index))
        if self.train and cfg.augment is not None:
            params = sample_params(cfg.augment, rng)
            image, augmented = apply_augment(params, image, mask)
            assert augmented is not None  # a mask in, a mask out
            mask = augmented
        transform = ResizePad(tuple(mask.shape), cfg.image_size)
        # In a DataLoader worker the image leaves unpadded and unnormalised (`PendingImage`,
        # a quarter of the bytes for gray); the loop builds it (`engine.loader.receive`).
        in_worker = get_worker_info() is not None
        sample: dict[str, Any] = {
            "image": (transform.pending_image if in_worker else transform.scaled_image)(image, cfg.normalization),
            "mask": transform.mask(mask),
            "ref": ref,
            "transform": transform,
            "index": index,
        }
        if cfg.prompts is not None:
            sample.update(_prompt_tensors(sample["mask"].numpy(), cfg.prompts, rng))
        return sample


def _prompt_tensors(mask: np.ndarray, config: PromptConfig, rng: np.random.Generator) -> dict:
    prompts = prompts_from_mask(mask, config, rng)
    out = {
        "prompt_classes": torch.from_numpy(prompts.class_ids),
        "prompt_masks": torch.from_numpy(prompts.targets),
    }
    if prompts.boxes is not None:
        out["boxes"] = torch.from_numpy(prompts.boxes)
    if prompts.points is not None:
        out["points"] = torch.from_numpy(prompts.points)
        out["point_labels"] = torch.from_numpy(prompts.point_labels)
    return out
