"""Seeded augmentation applied jointly to a 2D image and its mask.

All geometric changes (flips, rotation about the centre, scaled crop) are composed into
one affine map and resampled once: bilinear for the image, nearest for the mask (labels
are never interpolated), zeros outside the source (the same value the model frame uses
for padding). Prompts are sampled from the augmented mask, so they need no map of their
own. Intensity jitter (contrast about the image mean, brightness as a fraction of the
image's value range) touches the image only. Everything happens in the original 2D
frame ``H x W``, before resize-and-pad, with pixel-index coordinates
``(x, y) = (column, row)`` as in `samtune.data.prompts`.

    >>> params = sample_params(AugmentConfig(), np.random.default_rng(seed))
    >>> image, mask = apply_augment(params, image, mask)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from samtune.errors import ConfigError


@dataclass(frozen=True)
class AugmentConfig:
    """Ranges of the random changes (all off when zero / (1, 1)).

    Attributes:
        hflip: probability of a left-right flip.
        vflip: probability of an up-down flip.
        rotation: maximum rotation in degrees, drawn uniformly in [-rotation, rotation].
        crop_scale: (min, max) side of a square-aspect crop as a fraction of the image
            side, drawn uniformly, placed at a uniform random position and resized back to
            the full image (1.0 = no crop).
        brightness: maximum shift, as a fraction of the image's value range.
        contrast: maximum relative change of contrast about the image mean.
    """

    hflip: float = 0.5
    vflip: float = 0.0
    rotation: float = 15.0
    crop_scale: tuple[float, float] = (0.8, 1.0)
    brightness: float = 0.1
    contrast: float = 0.1

    def __post_init__(self) -> None:
        low, high = self.crop_scale
        if not 0.0 < low <= high <= 1.0:
            raise ConfigError(f"crop_scale must satisfy 0 < min <= max <= 1, got {self.crop_scale}")
        for name in ("hflip", "vflip"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"{name} is a probability in [0, 1], got {getattr(self, name)}")
        if self.rotation < 0 or self.brightness < 0 or not 0 <= self.contrast < 1:
            raise ConfigError("rotation and brightness must be >= 0 and contrast in [0, 1)")


@dataclass(frozen=True)
class AugmentParams:
    """One draw of `AugmentConfig`: what is done to one sample."""

    hflip: bool = False
    vflip: bool = False
    angle: float = 0.0  # degrees, counter-clockwise as seen on screen (y down)
    crop_scale: float = 1.0  # crop side / image side
    crop_shift: tuple[float, float] = (0.0, 0.0)  # crop centre offset, fraction of free room, [-1, 1]
    brightness: float = 0.0  # fraction of the value range
    contrast: float = 1.0  # multiplier

    @property
    def is_geometric_identity(self) -> bool:
        """True when no pixel moves except by flips."""
        return self.angle == 0.0 and self.crop_scale == 1.0


def sample_params(config: AugmentConfig, rng: np.random.Generator) -> AugmentParams:
    """Draw one set of parameters; the same generator state gives the same draw."""
    draws = rng.random(8)
    return AugmentParams(
        hflip=bool(draws[0] < config.hflip),
        vflip=bool(draws[1] < config.vflip),
        angle=float((2 * draws[2] - 1) * config.rotation),
        crop_scale=float(config.crop_scale[0] + draws[3] * (config.crop_scale[1] - config.crop_scale[0])),
        crop_shift=(float(2 * draws[4] - 1), float(2 * draws[5] - 1)),
        brightness=float((2 * draws[6] - 1) * config.brightness),
        contrast=float(1 + (2 * draws[7] - 1) * config.contrast),
    )


def affine_matrix(params: AugmentParams, height: int, width: int) -> np.ndarray:
    """3x3 map from *output* pixel (x, y, 1) to *input* pixel coordinates."""
    cx, cy = (width - 1) / 2.0, (height - 1) / 2.0
    scale = params.crop_scale
    # Room the crop centre may move while the (unrotated) crop stays inside the image.
    tx = params.crop_shift[0] * (1 - scale) * width / 2.0
    ty = params.crop_shift[1] * (1 - scale) * height / 2.0
    theta = math.radians(params.angle)
    cos, sin = math.cos(theta), math.sin(theta)
    centre_out = np.array([[1, 0, -cx], [0, 1, -cy], [0, 0, 1]], dtype=np.float64)
    rotate_scale = np.array([[scale * cos, -scale * sin, 0], [scale * sin, scale * cos, 0], [0, 0, 1]])
    to_input = np.array([[1, 0, cx + tx], [0, 1, cy + ty], [0, 0, 1]], dtype=np.float64)
    matrix = to_input @ rotate_scale @ centre_out
    flip = np.eye(3)
    if params.hflip:
        flip = np.array([[-1, 0, width - 1], [0, 1, 0], [0, 0, 1]], dtype=np.float64) @ flip
    if params.vflip:
        flip = np.array([[1, 0, 0], [0, -1, height - 1], [0, 0, 1]], dtype=np.float64) @ flip
    return flip @ matrix


def _sampling_grid(matrix: np.ndarray, height: int, width: int) -> torch.Tensor:
    """grid_sample grid [1,H,W,2] so that output pixel p reads input pixel matrix @ p."""
    # pixel index -> normalised [-1, 1] (align_corners=False): u = (2x + 1) / W - 1
    to_norm = np.array([[2.0 / width, 0, 1.0 / width - 1], [0, 2.0 / height, 1.0 / height - 1], [0, 0, 1]])
    theta = to_norm @ matrix @ np.linalg.inv(to_norm)
    theta_t = torch.tensor(theta[:2], dtype=torch.float32)[None]
    return F.affine_grid(theta_t, [1, 1, height, width], align_corners=False)


def _warp(array: torch.Tensor, grid: torch.Tensor, mode: str) -> torch.Tensor:
    """Resample [1,C,H,W] along a grid from `_sampling_grid`; zeros outside the source."""
    return F.grid_sample(array, grid, mode=mode, padding_mode="zeros", align_corners=False)


def apply_augment(
    params: AugmentParams,
    image: np.ndarray,
    mask: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Apply one draw to image [H,W,C] float and mask [H,W] int.

    Prompts are sampled from the augmented mask afterwards, so they need no transform.
    Returns (image float32 [H,W,C], mask (same dtype) or None).
    """
    image = np.asarray(image, dtype=np.float32)
    height, width = image.shape[:2]
    if params.is_geometric_identity:
        out_image, out_mask = image, mask
        if params.hflip:
            out_image = out_image[:, ::-1]
            out_mask = out_mask[:, ::-1] if out_mask is not None else None
        if params.vflip:
            out_image = out_image[::-1]
            out_mask = out_mask[::-1] if out_mask is not None else None
        out_image = np.ascontiguousarray(out_image)
        out_mask = np.ascontiguousarray(out_mask) if out_mask is not None else None
    else:
        grid = _sampling_grid(affine_matrix(params, height, width), height, width)
        tensor = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))[None]
        out_image = _warp(tensor, grid, "bilinear")[0].numpy().transpose(1, 2, 0)
        out_mask = None
        if mask is not None:
            labels = torch.from_numpy(np.asarray(mask, dtype=np.float32))[None, None]
            out_mask = _warp(labels, grid, "nearest")[0, 0].numpy().astype(np.asarray(mask).dtype)
    if params.brightness != 0.0 or params.contrast != 1.0:
        value_range = float(image.max() - image.min())
        mean = float(out_image.mean())
        out_image = (out_image - mean) * params.contrast + mean + params.brightness * value_range
    return np.ascontiguousarray(out_image, dtype=np.float32), out_mask
