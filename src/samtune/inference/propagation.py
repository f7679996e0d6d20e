"""3D prompted segmentation from one prompt on one slice, without ground truth.

The user's box (and/or points) segments the start slice. Then, in each direction along the
slicing axis, the next slice is segmented with a box placed from the previous slice's
predicted mask: the bounding box of all its pixels, pushed out by ``margin`` pixels on every
side (clipped to the slice) so that a growing object is not cut off. Propagation in a
direction stops at the volume's edge, after ``max_slices`` slices, or when the prediction
disappears: fewer than ``min_area`` pixels (that slice is left empty). The start slice is
always kept as predicted.

Encoder forwards are the cost, and they do not depend on the prompt: slices are encoded
``batch_size`` at a time ahead of the decoder, so at most ``batch_size - 1`` forwards are
wasted where the object ends.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Sequence

import numpy as np

from samtune.data.geometry import LoadedImage
from samtune.errors import UserError
from samtune.inference.prompted import check_prompts
from samtune.inference.volume import as_volume, default_batch_size, pick_channels, slice_axis, take

if TYPE_CHECKING:
    from samtune.inference.predictor import Predictor

DEFAULT_MARGIN = 5  # pixels added on each side of the previous slice's mask
DEFAULT_MIN_AREA = 10  # pixels; below this the object has disappeared


@dataclass
class PropagationResult:
    """A propagated 0/1 label volume and where it reaches.

    Attributes:
        labels: uint8 [z, y, x] 0/1 with the source geometry.
        axis: the slicing axis.
        start: the prompted slice.
        first, last: lowest and highest slice index holding the kept prediction.
        areas: predicted pixels per kept slice index.
    """

    labels: LoadedImage
    axis: int
    start: int
    first: int
    last: int
    areas: dict[int, int] = field(default_factory=dict)

    @property
    def covered(self) -> range:
        """Slice indices from `first` to `last` inclusive."""
        return range(self.first, self.last + 1)


def next_box(mask: np.ndarray, margin: float) -> tuple[float, float, float, float]:
    """(x0, y0, x1, y1) around every pixel of a non-empty [H, W] mask, ``margin`` pixels out,
    clipped to the slice (min/max pixel indices, as the study's boxes)."""
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    height, width = mask.shape
    return (
        float(max(cols[0] - margin, 0)),
        float(max(rows[0] - margin, 0)),
        float(min(cols[-1] + margin, width - 1)),
        float(min(rows[-1] + margin, height - 1)),
    )


def propagate(
    predictor: Predictor,
    volume: LoadedImage | np.ndarray,
    slice_index: int,
    box: Sequence[float] | None = None,
    axis: int = 0,
    points: Sequence[Sequence[float]] | None = None,
    point_labels: Sequence[int] | None = None,
    margin: float = DEFAULT_MARGIN,
    min_area: int = DEFAULT_MIN_AREA,
    max_slices: int | None = None,
    batch_size: int | None = None,
) -> PropagationResult:
    """Segment one object through a volume from a prompt on slice ``slice_index``.

    Args:
        predictor: a prompted `Predictor` (zero-shot model or prompted run).
        volume: `LoadedImage` volume (geometry kept) or array [z, y, x].
        slice_index: the prompted slice, along ``axis``.
        box: (x0, y0, x1, y1) on that slice, pixels (x = column, y = row).
        axis: array axis to slice across.
        points, point_labels: optional points on that slice (labels 1 object, 0 background).
        margin: pixels added around the previous mask's bounding box.
        min_area: a slice with fewer predicted pixels ends propagation in its direction.
        max_slices: at most this many slices in each direction (None: to the edge).
        batch_size: slices per encoder forward (look-ahead in the direction of travel);
            None: 1 on the CPU, 8 on a GPU.
    """
    if predictor.mode != "prompted":
        raise UserError("propagation needs a prompted model; this run segments automatically (use predict_volume)")
    batch_size = default_batch_size(predictor.device) if batch_size is None else batch_size
    if batch_size < 1:
        raise UserError(f"batch size must be >= 1, got {batch_size}")
    loaded = pick_channels(as_volume(volume), predictor.channels)
    axis = slice_axis(loaded, axis)
    count = loaded.spatial_shape[axis]
    if not 0 <= slice_index < count:
        raise UserError(f"slice {slice_index} is outside the volume: axis {axis} has slices 0..{count - 1}")
    start_image = take(loaded, axis, slice_index)
    check_prompts(start_image.shape[:2], tuple(box) if box is not None else None, points)
    value_range = predictor.value_range(loaded.array)

    labels = np.zeros(loaded.spatial_shape, dtype=np.uint8)
    by_slice = np.moveaxis(labels, axis, 0)
    embeddings, frames = predictor.encode_images([start_image], value_range)
    start_mask = (predictor.prompt_logits(embeddings, frames[0], box, points, point_labels) > 0).numpy()
    by_slice[slice_index] = start_mask
    areas = {slice_index: int(start_mask.sum())}
    ends = {+1: slice_index, -1: slice_index}
    if areas[slice_index] >= min_area:
        for direction in (+1, -1):
            ends[direction] = _sweep(predictor, loaded, axis, slice_index, direction, start_mask, value_range,
                                     by_slice, areas, margin, min_area, max_slices, batch_size)
    return PropagationResult(LoadedImage(labels, loaded.geometry, loaded.path), axis, slice_index,
                             first=ends[-1], last=ends[+1], areas=areas)


def _sweep(predictor, loaded, axis, start, direction, previous, value_range, by_slice, areas,
           margin, min_area, max_slices, batch_size) -> int:
    """Propagate from ``start`` in one direction; returns the last slice kept."""
    count = by_slice.shape[0]
    stop = count if direction > 0 else -1
    if max_slices is not None:
        stop = min(stop, start + max_slices + 1) if direction > 0 else max(stop, start - max_slices - 1)
    index, last = start + direction, start
    while index != stop:
        chunk = range(index, stop, direction)[:batch_size]
        embeddings, frames = predictor.encode_images([take(loaded, axis, i) for i in chunk], value_range)
        for position, slice_index in enumerate(chunk):
            box = next_box(previous, margin)
            logits = predictor.prompt_logits(embeddings[position : position + 1], frames[position], box)
            mask = (logits > 0).numpy()
            area = int(mask.sum())
            if area < min_area:
                return last
            by_slice[slice_index] = mask
            areas[slice_index] = area
            previous, last = mask, slice_index
        index = chunk[-1] + direction
    return last
