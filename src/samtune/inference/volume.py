"""Volumes slice by slice: batched encoder forwards, bounded memory, geometry kept.

A volume ``[z, y, x]`` (optionally ``[z, y, x, C]``) is cut across an array axis (0 gives
``[y, x]`` slices, see `samtune.data.slicing`). Its intensity range is computed once for
the whole volume, so every slice is normalised alike, as in training. Slices are
preprocessed ``batch_size`` at a time and only the uint8 labels are kept, so memory holds
the volume, its label volume and one batch of model inputs, whatever the slice count.
"""

from __future__ import annotations

import hashlib
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


def encode_batch_size(predictor: Predictor) -> int:
    """Slices per encoder call for `predictor` when none is given: what its backend asks
    for to keep the cores busy (`OnnxSam.preferred_batch`: one slice per core), else
    `default_batch_size` of its device."""
    return getattr(getattr(predictor, "model", None), "preferred_batch", None) or default_batch_size(predictor.device)


def batches(count: int, batch_size: int) -> Iterator[range]:
    """Consecutive index ranges of at most ``batch_size`` covering 0..count-1."""
    if batch_size < 1:
        raise UserError(f"batch size must be >= 1, got {batch_size}")
    for start in range(0, count, batch_size):
        yield range(start, min(start + batch_size, count))


def slice_key(array: np.ndarray) -> bytes:
    """A digest of a slice's exact values (shape, dtype and bytes)."""
    digest = hashlib.blake2b(f"{array.shape}{array.dtype}".encode(), digest_size=16)
    digest.update(np.ascontiguousarray(array).tobytes())
    return digest.digest()


def unique_slices(volume: LoadedImage, axis: int) -> tuple[list[int], list[tuple[int, int]]]:
    """(indices of the slices to predict, [(index, earlier index it repeats)]) across `axis`.

    A slice equal value for value to an earlier one (the all-zero slices at the ends of a
    padded volume: 34 of the MNI template's 189 axial slices) takes that slice's labels
    without a forward: with one intensity range per volume its model input, hence its
    labels, are the same. Constant slices of another value are still predicted: an
    automatic model may label a blank slice, so "blank means background" is not assumed.
    """
    first_of: dict[bytes, int] = {}
    firsts, copies = [], []
    for index in range(volume.array.shape[axis]):
        key = slice_key(take_slice(volume.array, axis, index))
        if key in first_of:
            copies.append((index, first_of[key]))
        else:
            first_of[key] = index
            firsts.append(index)
    return firsts, copies


def predict_volume(
    predictor: Predictor, volume: LoadedImage | np.ndarray, axis: int = 0, batch_size: int | None = None
) -> LoadedImage:
    """Labels of every slice of a volume, for an automatic (no-prompt) predictor.

    Args:
        predictor: a `Predictor` in automatic mode.
        volume: `LoadedImage` volume (its geometry is kept) or an array [z, y, x].
        axis: array axis to slice across (0, 1 or 2).
        batch_size: slices per encoder forward; memory grows with it, not with the volume.
            None: `encode_batch_size` of the predictor.

    Returns:
        `LoadedImage` with uint8 labels of the volume's spatial shape (0 = background,
        k = class k) and the source's geometry, ready for `write_image`. Every slice
        gets the model's labels, empty ones too; a slice that repeats an earlier one
        exactly is not run again but copies its labels (`unique_slices`).
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
    batch_size = encode_batch_size(predictor) if batch_size is None else batch_size
    firsts, copies = unique_slices(loaded, axis)
    for positions in batches(len(firsts), batch_size):
        indices = [firsts[p] for p in positions]
        images = [take_slice(loaded.array, axis, i) for i in indices]
        for index, slice_labels in zip(indices, predictor.predict_images(images, value_range=value_range)):
            by_slice[index] = slice_labels
    for index, source in copies:  # exact repeats of an earlier slice: same input, same labels
        by_slice[index] = by_slice[source]
    return LoadedImage(labels, loaded.geometry, loaded.path)
