"""Physical geometry of an image: spacing, origin and direction.

Convention (stated once, used everywhere in samtune.data):

- Arrays are indexed in numpy order, slowest axis first, exactly as SimpleITK's
  ``GetArrayFromImage`` returns them: 2D images ``[y, x]`` (rows, columns), volumes
  ``[z, y, x]``; a trailing channel axis ``[..., C]`` when there are channels.
- `Geometry` stores ``spacing`` and ``origin`` in ITK physical order ``(x, y[, z])``, i.e.
  the *reverse* of the array axes, in millimetres, and ``direction`` as the row-major
  ``D x D`` direction-cosine matrix ITK reports. This is what SimpleITK's
  ``GetSpacing/GetOrigin/GetDirection`` return, so writing an image back is lossless.
  Use `Geometry.array_spacing` for spacing in array-axis order.
- 2D formats (PNG, JPEG, BMP, TIFF) carry no geometry: unit spacing, zero origin,
  identity direction.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class Geometry:
    """Spacing (mm), origin (mm) and direction cosines in ITK (x, y[, z]) order.

    Attributes:
        spacing: D floats, pixel size along x, y[, z].
        origin: D floats, physical position of the centre of pixel index 0.
        direction: D*D floats, row-major direction-cosine matrix.
    """

    spacing: tuple[float, ...]
    origin: tuple[float, ...]
    direction: tuple[float, ...]

    def __post_init__(self) -> None:
        dim = len(self.spacing)
        if len(self.origin) != dim or len(self.direction) != dim * dim:
            raise ValueError(
                f"inconsistent geometry: spacing {self.spacing}, origin {self.origin}, "
                f"direction {self.direction}"
            )

    @classmethod
    def identity(cls, dim: int) -> "Geometry":
        """Unit spacing, zero origin, identity direction: the geometry of a 2D photo format."""
        return cls(
            spacing=(1.0,) * dim,
            origin=(0.0,) * dim,
            direction=tuple(float(v) for v in np.eye(dim).ravel()),
        )

    @classmethod
    def from_sitk(cls, image) -> "Geometry":
        """Geometry of a SimpleITK image (its x, y[, z] order is kept)."""
        return cls(
            spacing=tuple(float(v) for v in image.GetSpacing()),
            origin=tuple(float(v) for v in image.GetOrigin()),
            direction=tuple(float(v) for v in image.GetDirection()),
        )

    def apply_to_sitk(self, image) -> None:
        """Set this geometry on a SimpleITK image of the same dimension."""
        image.SetSpacing(self.spacing)
        image.SetOrigin(self.origin)
        image.SetDirection(self.direction)

    @property
    def dim(self) -> int:
        """Number of spatial dimensions (2 or 3)."""
        return len(self.spacing)

    @property
    def array_spacing(self) -> tuple[float, ...]:
        """Spacing in numpy array-axis order: (y, x) or (z, y, x)."""
        return tuple(reversed(self.spacing))

    @property
    def is_identity(self) -> bool:
        """True for unit spacing, zero origin and identity direction (no physical meaning)."""
        return self.close_to(Geometry.identity(self.dim))

    def close_to(self, other: "Geometry", rtol: float = 1e-4, atol: float = 1e-4) -> bool:
        """Same spacing, origin and direction up to rounding in file headers."""
        if self.dim != other.dim:
            return False
        return all(
            np.allclose(a, b, rtol=rtol, atol=atol)
            for a, b in (
                (self.spacing, other.spacing),
                (self.origin, other.origin),
                (self.direction, other.direction),
            )
        )

    def differences(self, other: "Geometry", rtol: float = 1e-4, atol: float = 1e-4) -> list[str]:
        """Human-readable differences, e.g. ['spacing (1.0, 1.0) vs (0.5, 0.5)']."""
        if self.dim != other.dim:
            return [f"dimension {self.dim} vs {other.dim}"]
        found = []
        for name in ("spacing", "origin", "direction"):
            mine, theirs = getattr(self, name), getattr(other, name)
            if not np.allclose(mine, theirs, rtol=rtol, atol=atol):
                found.append(f"{name} {_fmt(mine)} vs {_fmt(theirs)}")
        return found

    def to_dict(self) -> dict:
        """JSON-friendly form."""
        return {
            "spacing": list(self.spacing),
            "origin": list(self.origin),
            "direction": list(self.direction),
        }

    @classmethod
    def from_dict(cls, data: dict) -> "Geometry":
        """Inverse of `to_dict`."""
        return cls(
            spacing=tuple(float(v) for v in data["spacing"]),
            origin=tuple(float(v) for v in data["origin"]),
            direction=tuple(float(v) for v in data["direction"]),
        )


def _fmt(values: tuple[float, ...]) -> str:
    return "(" + ", ".join(f"{v:.4g}" for v in values) + ")"


@dataclass
class LoadedImage:
    """Pixels of one file with their geometry.

    Attributes:
        array: numpy array in array-axis order (see module docstring): [y, x], [y, x, C],
            [z, y, x] or [z, y, x, C]; the dtype stored in the file.
        geometry: spacing/origin/direction in ITK (x, y[, z]) order; ``geometry.dim`` is the
            number of spatial axes, so a trailing axis beyond it is the channel axis.
        path: the file (or DICOM folder) it was read from.
    """

    array: np.ndarray
    geometry: Geometry
    path: str | Path | None = None

    @property
    def spatial_ndim(self) -> int:
        """2 for images, 3 for volumes."""
        return self.geometry.dim

    @property
    def spatial_shape(self) -> tuple[int, ...]:
        """(y, x) or (z, y, x)."""
        return tuple(self.array.shape[: self.spatial_ndim])

    @property
    def channels(self) -> int:
        """Number of channels: 1 without a channel axis."""
        return int(self.array.shape[-1]) if self.array.ndim > self.spatial_ndim else 1
