"""Read a case's pixels: channels stacked, mask checked against the image.

`read_case` reads every channel file and the mask once and returns a `CaseData`. It
raises `DataError` naming the file for anything that would break training: channel files
that disagree in shape or geometry, a mask whose shape or geometry differs from the
image's, NaN/inf intensities, colour or negative masks.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from samtune.data.geometry import Geometry, LoadedImage
from samtune.data.labels import label_array
from samtune.data.readers import format_for, read_image
from samtune.data.sources import Case
from samtune.errors import DataError


@dataclass
class CaseData:
    """Pixels of one case.

    Attributes:
        case: the `Case` it was read from.
        image: [y, x] / [z, y, x], or with a trailing channel axis C when the case has
            several channel files or colour pixels; the files' dtype.
        geometry: the (first channel's) geometry, ITK (x, y[, z]) order.
        mask: stored mask values, spatial shape of ``image``; None for unlabelled cases.
    """

    case: Case
    image: np.ndarray
    geometry: Geometry
    mask: np.ndarray | None

    @property
    def spatial_ndim(self) -> int:
        """2 or 3."""
        return self.geometry.dim

    @property
    def spatial_shape(self) -> tuple[int, ...]:
        """(y, x) or (z, y, x)."""
        return tuple(self.image.shape[: self.spatial_ndim])


def _stores_geometry(image: LoadedImage) -> bool:
    """False for 2D photo formats (PNG, JPEG, ...), which carry no spacing/origin/direction."""
    path = image.path
    return path is None or Path(path).is_dir() or format_for(path).keeps_geometry


def _geometry_mismatch(reference: LoadedImage, other: LoadedImage) -> list[str]:
    # 2D photo formats carry no geometry: only compare when both files store one (an
    # identity geometry stored in a NIfTI still has to match its mask's).
    if not (_stores_geometry(reference) and _stores_geometry(other)):
        return [] if reference.geometry.dim == other.geometry.dim else [
            f"dimension {reference.geometry.dim} vs {other.geometry.dim}"
        ]
    return reference.geometry.differences(other.geometry)


def read_channels(case: Case) -> LoadedImage:
    """All channel files of a case as one `LoadedImage` (channels last when more than one)."""
    loaded = [read_image(path) for path in case.images]
    first = loaded[0]
    for other in loaded[1:]:
        if other.spatial_shape != first.spatial_shape or other.channels != 1:
            raise DataError(
                f"{other.path}: shape {other.array.shape} differs from {first.path} "
                f"{first.array.shape}; all channels of a case must share one grid"
            )
        differences = _geometry_mismatch(first, other)
        if differences:
            raise DataError(f"{other.path}: geometry differs from {first.path}: {'; '.join(differences)}")
    if len(loaded) == 1:
        return first
    if first.channels != 1:
        raise DataError(f"{first.path}: multi-file cases need one-channel files, found {first.channels}")
    return LoadedImage(np.stack([item.array for item in loaded], axis=-1), first.geometry, first.path)


def check_intensities(image: LoadedImage) -> None:
    """NaN / inf / non-numeric images raise DataError naming the file."""
    array = image.array
    if not np.issubdtype(array.dtype, np.number) and array.dtype != np.bool_:
        raise DataError(f"{image.path}: pixel type {array.dtype} is not numeric")
    if np.issubdtype(array.dtype, np.floating) and not np.isfinite(array).all():
        count = int((~np.isfinite(array)).sum())
        raise DataError(f"{image.path}: {count} NaN or infinite value(s); fix or replace them before training")


def read_mask_for(case: Case, image: LoadedImage) -> np.ndarray:
    """The case's mask values, checked to lie on the image's grid."""
    if case.mask is None:
        raise DataError(f"{case.describe()}: no mask given")
    mask = read_image(case.mask, role="mask")
    values = label_array(mask)
    if mask.geometry.dim != image.geometry.dim or values.shape != image.spatial_shape:
        raise DataError(
            f"{case.mask}: mask size {values.shape} does not match image size "
            f"{image.spatial_shape} ({image.path})"
        )
    differences = _geometry_mismatch(image, mask)
    if differences:
        raise DataError(
            f"{case.mask}: geometry differs from image {image.path}: {'; '.join(differences)}; "
            "resample the mask onto the image grid"
        )
    return values


def read_case(case: Case, with_mask: bool = True) -> CaseData:
    """Read a case once: image channels, geometry and (if ``with_mask``) mask values."""
    image = read_channels(case)
    check_intensities(image)
    mask = read_mask_for(case, image) if with_mask and case.mask is not None else None
    if with_mask and case.mask is None:
        raise DataError(f"{case.describe()}: no mask given; training needs one per case")
    return CaseData(case, image.array, image.geometry, mask)


def select_channels(data: CaseData, channels: tuple[int, ...] | None) -> np.ndarray:
    """Image of a case as [..spatial.., C] with C = 1 or 3 (see `SliceDatasetConfig.channels`)."""
    image = data.image
    spatial = data.spatial_ndim
    if image.ndim == spatial:
        image = image[..., None]
    count = image.shape[-1]
    if channels is not None:
        bad = [c for c in channels if not 0 <= c < count]
        if bad or len(channels) not in (1, 3):
            raise DataError(
                f"{data.case.describe()}: channels {list(channels)} invalid for an image with "
                f"{count} channel(s); choose 1 or 3 of 0..{count - 1}"
            )
        return image[..., list(channels)]
    photo_alpha = len(data.case.images) == 1 and spatial == 2 and count in (2, 4)
    if photo_alpha:
        return image[..., : count - 1]  # alpha is display-only
    if count not in (1, 3):
        raise DataError(
            f"{data.case.describe()}: image has {count} channels; SAM-family models take 1 or 3: "
            "choose them with channels (e.g. --channels 0 or 0,1,2)"
        )
    return image
