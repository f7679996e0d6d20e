"""3D -> 2D slices with provenance, and 2D predictions back to a volume.

A 2D image is one slice (``axis=None, index=0``). A volume ``[z, y, x]`` is cut along an
array axis: ``axis=0`` gives ``[y, x]`` slices (axial for the usual RAS/LPS volumes),
``axis=1`` gives ``[z, x]`` and ``axis=2`` gives ``[z, y]``. Each slice carries a
`SliceRef` (case, axis, index, spatial shape, geometry) so that `restack` can rebuild the
volume with its original geometry.

For training, `select_slices` applies an explicit policy to slices without foreground:
``"keep"`` all, ``"drop"`` all, or a float ``r``: keep at most ``round(r * n_fg)``
empty slices per case (``n_fg`` = slices with foreground), drawn with a seeded generator.
Evaluation and prediction use every slice (`select_slices` is not called).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Union, cast

import numpy as np

from samtune.data.geometry import Geometry
from samtune.errors import DataError

EmptySlicePolicy = Union[str, float]


@dataclass(frozen=True)
class SliceRef:
    """Where a 2D slice comes from.

    Attributes:
        case_id: the case.
        axis: array axis of the volume the slice is taken across (0, 1, 2), None for 2D.
        index: position along ``axis`` (0 for 2D images).
        spatial_shape: (y, x) or (z, y, x) of the source image / volume.
        geometry: the source's geometry (ITK x, y[, z] order).
    """

    case_id: str
    axis: int | None
    index: int
    spatial_shape: tuple[int, ...]
    geometry: Geometry

    @property
    def slice_shape(self) -> tuple[int, int]:
        """(rows, cols) of the 2D slice."""
        if self.axis is None:
            return tuple(self.spatial_shape)  # type: ignore[return-value]
        rest = [s for i, s in enumerate(self.spatial_shape) if i != self.axis]
        return rest[0], rest[1]

    @property
    def pixel_spacing(self) -> tuple[float, float]:
        """Spacing of the slice's (rows, cols) in mm."""
        spacing = self.geometry.array_spacing
        if self.axis is None:
            return spacing[0], spacing[1]
        rest = [s for i, s in enumerate(spacing) if i != self.axis]
        return rest[0], rest[1]


def check_axis(axis: int, spatial_ndim: int) -> int | None:
    """The slicing axis to use for an image with ``spatial_ndim`` axes (None for 2D)."""
    if spatial_ndim == 2:
        return None
    if axis not in (0, 1, 2):
        raise DataError(f"slice axis must be 0 (z), 1 (y) or 2 (x), got {axis}")
    return axis


def slice_refs(
    case_id: str, spatial_shape: tuple[int, ...], geometry: Geometry, axis: int = 0
) -> list[SliceRef]:
    """Every slice of one image/volume, in index order."""
    use_axis = check_axis(axis, len(spatial_shape))
    if use_axis is None:
        return [SliceRef(case_id, None, 0, tuple(spatial_shape), geometry)]
    return [
        SliceRef(case_id, use_axis, index, tuple(spatial_shape), geometry)
        for index in range(spatial_shape[use_axis])
    ]


def take_slice(array: np.ndarray, axis: int | None, index: int) -> np.ndarray:
    """Slice ``index`` across ``axis`` of ``array`` as [rows, cols(, C)] (any trailing
    channel axis kept); ``axis`` None: ``array`` is one 2D image and is returned as is.

    The one slice helper of the package (training samples, prediction, the viewer).
    """
    if axis is None:
        return array
    return np.take(array, index, axis=axis)


def foreground_per_slice(mask: np.ndarray, axis: int | None) -> np.ndarray:
    """bool [n_slices]: whether each slice of a class map holds any foreground."""
    if axis is None:
        return np.array([bool(mask.any())])
    other = tuple(i for i in range(mask.ndim) if i != axis)
    return np.asarray(np.asarray(mask != 0).any(axis=other))


def select_slices(
    has_foreground: np.ndarray, policy: EmptySlicePolicy, rng: np.random.Generator
) -> list[int]:
    """Indices of the slices to train on, in increasing order (see module docstring)."""
    has_foreground = np.asarray(has_foreground, dtype=bool)
    foreground = np.flatnonzero(has_foreground)
    empty = np.flatnonzero(~has_foreground)
    if policy == "keep":
        return list(range(len(has_foreground)))
    if policy == "drop":
        return foreground.tolist()
    if isinstance(policy, str) or not isinstance(policy, (int, float)) or policy < 0:
        raise DataError(f"empty-slice policy must be 'keep', 'drop' or a ratio >= 0, got {policy!r}")
    count = min(len(empty), int(round(float(policy) * len(foreground))))
    chosen = rng.choice(empty, size=count, replace=False) if count else np.array([], dtype=int)
    return sorted(foreground.tolist() + chosen.tolist())


def restack(slices: Iterable[tuple[SliceRef, np.ndarray]]) -> tuple[np.ndarray, Geometry]:
    """Rebuild one case's volume (or 2D image) from all of its 2D slices.

    Args:
        slices: (ref, array) pairs of a single case, any order; each array has the
            slice's (rows, cols) shape (e.g. a predicted label map in the original frame).

    Returns:
        (array with the source's spatial shape, the source's geometry), ready for
        `write_image`. Missing or duplicate slices raise DataError: nothing is filled in.
    """
    pairs = list(slices)
    if not pairs:
        raise DataError("no slices to restack")
    first = pairs[0][0]
    if first.axis is None:
        if len(pairs) != 1:
            raise DataError(f"case {first.case_id}: a 2D image has one slice, got {len(pairs)}")
        return np.asarray(pairs[0][1]), first.geometry
    count = first.spatial_shape[first.axis]
    parts: list[np.ndarray | None] = [None] * count
    for ref, array in pairs:
        if (ref.case_id, ref.axis, ref.spatial_shape) != (first.case_id, first.axis, first.spatial_shape):
            raise DataError(f"cannot restack slices of {ref.case_id} axis {ref.axis} with {first.case_id} axis {first.axis}")
        if tuple(np.shape(array)[:2]) != ref.slice_shape:
            raise DataError(f"case {ref.case_id} slice {ref.index}: shape {np.shape(array)} is not {ref.slice_shape}")
        if parts[ref.index] is not None:
            raise DataError(f"case {ref.case_id}: slice {ref.index} given twice")
        parts[ref.index] = np.asarray(array)
    missing = [i for i, part in enumerate(parts) if part is None]
    if missing:
        raise DataError(f"case {first.case_id}: {len(missing)} slice(s) missing, e.g. {missing[:5]}")
    return np.stack(cast(list[np.ndarray], parts), axis=first.axis), first.geometry  # none missing
