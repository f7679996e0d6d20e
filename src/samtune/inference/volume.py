"""Volumes slice by slice: batched encoder forwards, bounded memory, geometry kept.

A volume ``[z, y, x]`` (optionally ``[z, y, x, C]``) is cut across an array axis (0 gives
``[y, x]`` slices, see `samtune.data.slicing`). Its intensity range is computed once for
the whole volume, so every slice is normalised alike, as in training. Slices are
preprocessed ``batch_size`` at a time and only the uint8 labels are kept, so memory holds
the volume, its label volume and one batch of model inputs, whatever the slice count.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterator

import numpy as np
import torch

from samtune.data.geometry import Geometry, LoadedImage
from samtune.data.slicing import check_axis, take_slice
from samtune.errors import DataError, UserError

if TYPE_CHECKING:
    from samtune.inference.predictor import Predictor


def as_volume(volume: LoadedImage | np.ndarray) -> LoadedImage:
    """A `LoadedImage` volume; a bare array [z, y, x] gets unit spacing and no origin."""
    if isinstance(volume, LoadedImage):
        loaded = volume
    else:
        array = np.asarray(volume)
        if array.ndim != 3:
            raise DataError(f"expected a volume array [z, y, x], got shape {array.shape}")
        loaded = LoadedImage(array, Geometry.identity(3))
    if loaded.spatial_ndim != 3:
        raise DataError(
            f"{loaded.path or 'input'} is a 2D image of shape {loaded.array.shape}; "
            "use predict_image for 2D images"
        )
    extra = loaded.array.ndim - 3
    if extra > 1:
        raise DataError(f"{loaded.path or 'input'}: array of shape {loaded.array.shape} is not [z, y, x(, C)]")
    return loaded


def pick_channels(image: LoadedImage, channels: tuple[int, ...] | None) -> LoadedImage:
    """The image with only the run's ``channels`` (last axis) when it has a channel axis."""
    if channels is None or image.array.ndim == image.spatial_ndim:
        return image
    count = image.array.shape[-1]
    if any(not 0 <= c < count for c in channels):
        raise DataError(
            f"{image.path or 'input'} has {count} channel(s); the run was trained on channels {list(channels)}"
        )
    return LoadedImage(image.array[..., list(channels)], image.geometry, image.path)


def slice_axis(volume: LoadedImage, axis: int) -> int:
    """`axis` checked against a 3D volume (0, 1 or 2)."""
    checked = check_axis(axis, volume.spatial_ndim)
    assert checked is not None
    return checked


def default_batch_size(device: torch.device | str) -> int:
    """Slices per encoder forward when none is given: 1 on the CPU, 8 on a GPU.

    On 2 CPU cores a batch of 4 LiteMedSAM slices runs no faster than 4 single slices
    (0.505 against 0.507 slices/s on the MNI volume) and peaks 600 MB higher
    (BENCHMARKS.md); a GPU needs batches to be kept busy.
    """
    return 1 if torch.device(device).type == "cpu" else 8


def batches(count: int, batch_size: int) -> Iterator[range]:
    """Consecutive index ranges of at most ``batch_size`` covering 0..count-1."""
    if batch_size < 1:
        raise UserError(f"batch size must be >= 1, got {batch_size}")
    for start in range(0, count, batch_size):
        yield range(start, min(start + batch_size, count))


def predict_volume(
    predictor: Predictor, volume: LoadedImage | np.ndarray, axis: int = 0, batch_size: int | None = None
) -> LoadedImage:
    """Labels of every slice of a volume, for an automatic (no-prompt) predictor.

    Args:
        predictor: a `Predictor` in automatic mode.
        volume: `LoadedImage` volume (its geometry is kept) or an array [z, y, x].
        axis: array axis to slice across (0, 1 or 2).
        batch_size: slices per encoder forward; memory grows with it, not with the volume.
            None: `default_batch_size` of the predictor's device.

    Returns:
        `LoadedImage` with uint8 labels of the volume's spatial shape (0 = background,
        k = class k) and the source's geometry, ready for `write_image`. No slice is
        skipped: empty slices are predicted too.
    """
    if predictor.mode != "automatic":
        raise UserError(
            "this model segments from prompts; give a box on one slice and use propagate() "
            "(samtune predict --slice K --box X0 Y0 X1 Y1)"
        )
    loaded = pick_channels(as_volume(volume), predictor.channels)
    axis = slice_axis(loaded, axis)
    value_range = predictor.value_range(loaded.array)  # once per volume, as in training
    labels = np.zeros(loaded.spatial_shape, dtype=np.uint8)
    # A view whose first axis is the slicing axis: writing into it fills `labels`.
    by_slice = np.moveaxis(labels, axis, 0)
    batch_size = default_batch_size(predictor.device) if batch_size is None else batch_size
    for indices in batches(by_slice.shape[0], batch_size):
        images = [take_slice(loaded.array, axis, i) for i in indices]
        for index, slice_labels in zip(indices, predictor.predict_images(images, value_range=value_range)):
            by_slice[index] = slice_labels
    return LoadedImage(labels, loaded.geometry, loaded.path)
