"""3D prompted segmentation from prompts on one or more slices, without ground truth.

Each prompt (a box and/or points on one slice, for one class) segments its slice. Then, in
both directions along the slicing axis, the next slice is prompted with a box around the
previous slice's mask (its bounding box pushed out by ``margin`` pixels, clipped to the
slice) and, with ``mask_prompt``, with the previous slice's low-resolution logits as SAM's
dense mask prompt. ``largest_component`` keeps only the largest connected region of each
predicted slice. Propagation in a direction stops at the volume's edge, after
``max_slices``, or where `StopRule` (samtune.inference.stopping) says the structure has
ended; the start slice is always kept.

Several prompts of one class (on different slices) are merged: each slice is predicted
from its nearest prompt (a prompt propagates up to half way to the next one of its class).
Several classes are propagated one after the other; where two claim a pixel, the higher
logit wins.

Encoder forwards are the cost and do not depend on the prompt: slices are encoded
``batch_size`` at a time ahead of the decoder, and embeddings are kept for the other classes
and prompts (at most ``CACHED_SLICES``).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Sequence

import numpy as np
import torch
from scipy import ndimage

from samtune.data.geometry import LoadedImage
from samtune.data.prompts import mask_box
from samtune.data.slicing import take_slice
from samtune.errors import UserError
from samtune.inference.prompted import check_prompts
from samtune.inference.stopping import (Reference, SliceSignals, StopRule, masked_embedding, reference_of,
                                        signals_of)
from samtune.inference.volume import as_volume, encode_batch_size, pick_channels, slice_axis

if TYPE_CHECKING:
    from samtune.inference.predictor import Predictor

DEFAULT_MARGIN = 5  # pixels added on each side of the previous slice's mask
DEFAULT_MIN_AREA = 10  # pixels; below this the object has disappeared
CACHED_SLICES = 96  # embeddings kept for other classes/prompts (LiteMedSAM: 4 MB each)
# Chosen by measurement on 9 real structures (BENCHMARKS.md, "3D propagation"): the masked
# region's mean intensity within 3 spreads of the prompted slice's, and its mean embedding
# at cosine >= 0.6 to the prompted slice's. No structure leaked past its ends; today's
# area-only rule leaked 6-12+ slices on 8 of 9.
DEFAULT_STOP = StopRule(min_area=DEFAULT_MIN_AREA, max_contrast=3.0, min_similarity=0.6)


@dataclass(frozen=True)
class SlicePrompt:
    """A prompt on one slice: box (x0, y0, x1, y1) and/or points (x, y), pixels of the slice
    (x = column, y = row), and the class value ``label`` written where it is found."""

    slice: int
    box: tuple[float, ...] | None = None  # 4 values
    points: tuple[tuple[float, ...], ...] | None = None  # 2 values each
    point_labels: tuple[int, ...] | None = None
    label: int = 1


@dataclass(frozen=True)
class PropagationConfig:
    """How propagation runs (module docstring). ``batch_size`` None: `encode_batch_size` (1 on
    the CPU with torch, one per core with onnxruntime, 8 on a GPU)."""

    margin: float = DEFAULT_MARGIN
    mask_prompt: bool = False
    largest_component: bool = False
    stop: StopRule = DEFAULT_STOP
    max_slices: int | None = None
    batch_size: int | None = None

    def __post_init__(self) -> None:
        if self.margin < 0:
            raise UserError(f"propagation margin must be >= 0 pixels, got {self.margin}")
        if self.max_slices is not None and self.max_slices < 0:
            raise UserError(f"max_slices must be >= 0, got {self.max_slices}")
        if self.batch_size is not None and self.batch_size < 1:
            raise UserError(f"batch size must be >= 1, got {self.batch_size}")


@dataclass(frozen=True)
class Stop:
    """Where one sweep (one prompt, one direction) ended and why."""

    label: int
    start: int
    direction: int  # +1 or -1 along the axis
    last: int  # last slice kept
    reason: str  # "edge", "max_slices", "next prompt", or the broken bound ("iou=0.41")


@dataclass
class PropagationResult:
    """A propagated label volume and where it reaches.

    Attributes:
        labels: uint8 [z, y, x] (0 background, k = class k of the prompts) with the source geometry.
        axis: the slicing axis.
        start: the lowest prompted slice.
        first, last: lowest and highest slice index holding any kept prediction.
        areas: predicted pixels (all classes) per kept slice index.
        extents: per class, (first, last) kept slice.
        stops: per sweep, where and why it ended.
        signals: per class, per predicted slice (kept or the one that stopped a sweep), its signals.
    """

    labels: LoadedImage
    axis: int
    start: int
    first: int
    last: int
    areas: dict[int, int] = field(default_factory=dict)
    extents: dict[int, tuple[int, int]] = field(default_factory=dict)
    stops: list[Stop] = field(default_factory=list)
    signals: dict[int, dict[int, SliceSignals]] = field(default_factory=dict)


def largest_component(mask: np.ndarray) -> np.ndarray:
    """The largest 8-connected region of a 0/1 [H, W] mask (the mask itself when empty)."""
    regions, count = ndimage.label(mask, structure=np.ones((3, 3), dtype=bool))
    if count <= 1:
        return mask
    sizes = np.bincount(regions.ravel())[1:]
    return regions == (int(np.argmax(sizes)) + 1)


def propagate(
    predictor: Predictor,
    volume: LoadedImage | np.ndarray,
    slice_index: int | None = None,
    box: Sequence[float] | None = None,
    axis: int = 0,
    points: Sequence[Sequence[float]] | None = None,
    point_labels: Sequence[int] | None = None,
    prompts: Sequence[SlicePrompt] | None = None,
    config: PropagationConfig | None = None,
    **options,
) -> PropagationResult:
    """Segment objects through a volume from prompts on one or more slices.

    Args:
        predictor: a prompted `Predictor` (zero-shot model or prompted run).
        volume: `LoadedImage` volume (geometry kept) or array [z, y, x].
        slice_index, box, points, point_labels: one prompt (class 1) on slice ``slice_index``;
            or give ``prompts`` instead.
        axis: array axis to slice across.
        prompts: `SlicePrompt`s: several slices and/or classes.
        config: `PropagationConfig`; ``options`` override its fields (margin, mask_prompt,
            largest_component, stop, max_slices, batch_size) and ``min_area`` that of the stop rule.
    """
    if predictor.mode != "prompted":
        raise UserError("propagation needs a prompted model; this run segments automatically (use predict_volume)")
    config = config or PropagationConfig()
    if "min_area" in options:  # shorthand for the stop rule's min_area
        stop = options.pop("stop", config.stop)
        options["stop"] = replace(stop, min_area=options.pop("min_area"))
    unknown = sorted(set(options) - set(PropagationConfig.__dataclass_fields__))
    if unknown:
        raise TypeError(f"unknown propagation option(s): {', '.join(unknown)}")
    config = replace(config, **options)
    if prompts is None:
        if slice_index is None:
            raise UserError("say which slice the prompt is on (--slice K)")
        prompts = [SlicePrompt(int(slice_index), tuple(box) if box is not None else None,
                               tuple(map(tuple, points)) if points is not None else None,
                               tuple(point_labels) if point_labels is not None else None)]
    elif slice_index is not None or box is not None or points is not None:
        raise UserError("give either one prompt (slice, box, points) or a list of prompts, not both")
    loaded = pick_channels(as_volume(volume), predictor.channels)
    axis = slice_axis(loaded, axis)
    prompts = _checked(list(prompts), loaded, axis)
    return _Run(predictor, loaded, axis, config).run(prompts)


def _checked(prompts: list[SlicePrompt], loaded: LoadedImage, axis: int) -> list[SlicePrompt]:
    if not prompts:
        raise UserError("give at least one prompt (a box and/or points on a slice)")
    count = loaded.spatial_shape[axis]
    seen = set()
    for prompt in prompts:
        if not 0 <= prompt.slice < count:
            raise UserError(f"slice {prompt.slice} is outside the volume: axis {axis} has slices 0..{count - 1}")
        if not 1 <= prompt.label <= 255:
            raise UserError(f"prompt label {prompt.label} must be a class value 1..255")
        if (prompt.label, prompt.slice) in seen:
            raise UserError(f"two prompts for class {prompt.label} on slice {prompt.slice}; give one per slice")
        seen.add((prompt.label, prompt.slice))
        shape = take_slice(loaded.array, axis, prompt.slice).shape[:2]
        check_prompts(shape, prompt.box, list(prompt.points) if prompt.points else None)
    return sorted(prompts, key=lambda p: (p.label, p.slice))


@dataclass
class _State:
    """The previous kept slice of a sweep."""

    mask: np.ndarray
    low_res: torch.Tensor


class _Run:
    """One propagation call: the volume, its encoder cache and the output being filled."""

    def __init__(self, predictor: Predictor, loaded: LoadedImage, axis: int, config: PropagationConfig):
        self.predictor, self.loaded, self.axis, self.config = predictor, loaded, axis, config
        self.count = loaded.spatial_shape[axis]
        self.batch_size = config.batch_size or encode_batch_size(predictor)
        self.value_range = predictor.value_range(loaded.array)
        self.labels = np.zeros(loaded.spatial_shape, dtype=np.uint8)
        self.by_slice = np.moveaxis(self.labels, axis, 0)  # view: writing fills `labels`
        self.best = np.full(self.by_slice.shape, -np.inf, dtype=np.float32)  # winning logit per pixel
        self.cache: OrderedDict[int, tuple[torch.Tensor, object]] = OrderedDict()
        self.kept: dict[int, set[int]] = {}
        self.stops: list[Stop] = []
        self.signals: dict[int, dict[int, SliceSignals]] = {}

    def run(self, prompts: list[SlicePrompt]) -> PropagationResult:
        for label in sorted({p.label for p in prompts}):
            own = [p for p in prompts if p.label == label]
            self.kept[label], self.signals[label] = set(), {}
            for j, prompt in enumerate(own):
                # Territory: half way to the neighbouring prompts of the class (nearest prompt wins).
                low = (own[j - 1].slice + prompt.slice) // 2 + 1 if j > 0 else 0
                high = (prompt.slice + own[j + 1].slice) // 2 if j + 1 < len(own) else self.count - 1
                self._from_prompt(prompt, low, high)
        kept = sorted(set().union(*self.kept.values()))
        areas = {z: int((self.by_slice[z] > 0).sum()) for z in kept}
        extents = {label: (min(s), max(s)) for label, s in self.kept.items() if s}
        return PropagationResult(LoadedImage(self.labels, self.loaded.geometry, self.loaded.path), self.axis,
                                 min(p.slice for p in prompts), first=kept[0], last=kept[-1], areas=areas,
                                 extents=extents, stops=self.stops, signals=self.signals)

    # ------------------------------------------------------------ encoder
    def _embed(self, index: int, direction: int = 1, limit: int | None = None):
        """(embedding [1, C, h, w], frame) of slice ``index``; encodes ahead in ``direction``."""
        if index not in self.cache:
            end = (self.count - 1 if direction > 0 else 0) if limit is None else limit
            ahead = [i for i in range(index, end + direction, direction)[: self.batch_size] if i not in self.cache]
            embeddings, frames = self.predictor.encode_images([take_slice(self.loaded.array, self.axis, i) for i in ahead],
                                                              self.value_range)
            for position, i in enumerate(ahead):
                self.cache[i] = (embeddings[position : position + 1], frames[position])
            while len(self.cache) > max(CACHED_SLICES, self.batch_size):
                self.cache.popitem(last=False)
        self.cache.move_to_end(index)
        return self.cache[index]

    def _image01(self, index: int) -> np.ndarray:
        """Slice [H, W] scaled to [0, 1] by the volume's range (channels averaged)."""
        image = np.asarray(take_slice(self.loaded.array, self.axis, index), dtype=np.float32)
        if image.ndim == 3:
            image = image.mean(axis=-1)
        low, high = self.value_range
        return np.clip((image - low) / max(high - low, 1e-6), 0.0, 1.0)

    # ------------------------------------------------------------ sweeps
    def _predict(self, index, box, points=None, point_labels=None, mask_input=None):
        embedding, frame = self._embed(index)
        logits, low_res, iou = self.predictor.prompt_decode(embedding, frame, box, points, point_labels,
                                                            mask_input=mask_input)
        mask = (logits > 0).numpy()
        if self.config.largest_component:
            mask = largest_component(mask)
        return logits.numpy(), low_res, iou, mask, embedding, frame

    def _vector(self, embedding, frame, mask) -> torch.Tensor:
        return masked_embedding(embedding, frame.mask(mask))

    def _keep(self, label: int, index: int, logits: np.ndarray, mask: np.ndarray) -> None:
        wins = mask & (logits > self.best[index])
        self.by_slice[index][wins] = label
        self.best[index][wins] = logits[wins]
        self.kept[label].add(index)

    def _from_prompt(self, prompt: SlicePrompt, low: int, high: int) -> None:
        logits, low_res, iou, mask, embedding, frame = self._predict(prompt.slice, prompt.box, prompt.points,
                                                                     prompt.point_labels)
        self._keep(prompt.label, prompt.slice, logits, mask)
        image01 = self._image01(prompt.slice)
        reference = reference_of(image01, mask, self._vector(embedding, frame, mask))
        self.signals[prompt.label][prompt.slice] = signals_of(torch.from_numpy(logits), iou, mask, mask, image01,
                                                              reference.embedding, reference)
        if int(mask.sum()) < self.config.stop.min_area:
            return
        for direction, limit in ((+1, high), (-1, low)):
            self._sweep(prompt, direction, limit, _State(mask, low_res), reference)

    def _sweep(self, prompt: SlicePrompt, direction: int, limit: int, state: _State, reference: Reference) -> None:
        """Propagate from ``prompt.slice`` towards ``limit`` (inclusive) in ``direction``."""
        last, reason = prompt.slice, "edge" if limit in (0, self.count - 1) else "next prompt"
        steps = abs(limit - prompt.slice)
        if self.config.max_slices is not None and self.config.max_slices < steps:
            steps, reason = self.config.max_slices, "max_slices"
        for step in range(1, steps + 1):
            index = prompt.slice + direction * step
            self._embed(index, direction, limit)  # look-ahead batch
            box = mask_box(state.mask, self.config.margin)
            mask_input = state.low_res if self.config.mask_prompt else None
            logits, low_res, iou, mask, embedding, frame = self._predict(index, box, mask_input=mask_input)
            signals = signals_of(torch.from_numpy(logits), iou, mask, state.mask, self._image01(index),
                                 self._vector(embedding, frame, mask), reference)
            self.signals[prompt.label][index] = signals
            broken = self.config.stop.broken(signals)
            if broken is not None:
                reason = broken
                break
            self._keep(prompt.label, index, logits, mask)
            state, last = _State(mask, low_res), index
        self.stops.append(Stop(prompt.label, prompt.slice, direction, last, reason))
