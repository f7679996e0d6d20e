"""Intensity normalisation chosen by the model's weights, with CT windows and MR clipping.

Two steps, so that the expensive resize can run on one gray channel:

1. `scale_intensity`: clip (CT window / MR percentiles / a fixed range), then scale to
   the weights' pixel range: [0, 1] for "minmax" (MedSAM, LiteMedSAM) or [0, 255] for
   "imagenet" (SAM, MobileSAM). Gray stays one channel, alpha is dropped.
2. `normalize_channels`: to three channels; "imagenet" then applies ``(x - mean) / std``
   per channel. This step is affine per channel, so it commutes with bilinear resizing.

`normalize_intensity` does both on a 2D image: [H,W] or [H,W,C] -> float32 [H,W,3].
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch

from samtune.errors import ConfigError, DataError

Normalization = Literal["imagenet", "minmax"]
NORMALIZATIONS: tuple[str, ...] = ("imagenet", "minmax")

# ImageNet statistics on 0..255 pixels, as used by SAM and MobileSAM.
IMAGENET_MEAN = (123.675, 116.28, 103.53)
IMAGENET_STD = (58.395, 57.12, 57.375)

# Common CT windows, (level, width) in Hounsfield units.
CT_WINDOWS: dict[str, tuple[float, float]] = {
    "abdomen": (40.0, 400.0),
    "bone": (400.0, 1800.0),
    "brain": (40.0, 80.0),
    "liver": (60.0, 150.0),
    "lung": (-600.0, 1500.0),
    "mediastinum": (50.0, 350.0),
}
# MR intensities are clipped to these percentiles by default (study / MedSAM practice).
MR_PERCENTILES = (0.5, 99.5)


def check_normalization(normalization: str) -> None:
    if normalization not in NORMALIZATIONS:
        raise DataError(
            f"unknown normalization '{normalization}'; choose one of {list(NORMALIZATIONS)}"
        )


def _usable_channels(image: np.ndarray) -> np.ndarray:
    """[H,W] or [H,W,C] (C in 1, 2=gray+alpha, 3, 4=RGBA) -> [H,W,1] or [H,W,3], no alpha."""
    if image.ndim == 2:
        return image[:, :, None]
    if image.ndim != 3:
        raise DataError(
            f"expected a 2D image [H,W] or [H,W,C], got an array of shape {image.shape}; "
            "slice volumes into 2D first"
        )
    channels = image.shape[2]
    if channels in (1, 2):  # gray, gray+alpha: alpha is display-only
        return image[:, :, :1]
    if channels in (3, 4):  # RGB, RGBA
        return image[:, :, :3]
    raise DataError(
        f"image has {channels} channels (shape {image.shape}); SAM-family models take 1 "
        "(gray) or 3 (RGB) channels: select up to 3 channels"
    )


def _clip_window(image: np.ndarray, window: tuple[float, float]) -> np.ndarray:
    level, width = float(window[0]), float(window[1])
    if not width > 0:
        raise DataError(f"CT window width must be positive, got level={level}, width={width}")
    return np.clip(image, level - width / 2.0, level + width / 2.0)


def _clip_percentiles(image: np.ndarray, percentiles: tuple[float, float]) -> np.ndarray:
    low, high = float(percentiles[0]), float(percentiles[1])
    if not 0.0 <= low < high <= 100.0:
        raise DataError(f"percentiles must satisfy 0 <= low < high <= 100, got ({low}, {high})")
    lo_value, hi_value = np.percentile(image, [low, high])
    return np.clip(image, lo_value, hi_value)


def _to_range(image: np.ndarray, low: float, high: float, scale: float) -> np.ndarray:
    """Clip to [low, high] and map it linearly onto [0, scale]; a constant image -> zeros."""
    if high <= low:
        return np.zeros(image.shape, dtype=np.float32)
    out = np.clip(image, low, high, dtype=np.float32) if image.dtype == np.float32 else \
        np.clip(image.astype(np.float32), low, high)
    out -= np.float32(low)
    out *= np.float32(scale / (high - low))
    return out


def scale_intensity(
    image: np.ndarray,
    normalization: Normalization,
    window: tuple[float, float] | None = None,
    percentiles: tuple[float, float] | None = None,
    value_range: tuple[float, float] | None = None,
) -> np.ndarray:
    """Step 1: [H,W] / [H,W,C] -> float32 [H,W,1] (gray) or [H,W,3] on the weights' range.

    See `normalize_intensity` for the arguments; the output is on [0, 1] ("minmax") or
    [0, 255] ("imagenet"), before the per-channel mean/std.
    """
    check_normalization(normalization)
    if sum(v is not None for v in (window, percentiles, value_range)) > 1:
        raise DataError("give one of a CT window, MR percentiles or a value_range")
    array = np.asarray(image)
    if array.dtype == np.bool_ or not np.issubdtype(array.dtype, np.number):
        raise DataError(f"image must be numeric, got dtype {array.dtype}")
    if np.issubdtype(array.dtype, np.complexfloating):
        raise DataError("image is complex-valued; take its magnitude first")
    pixels = _usable_channels(array)
    if np.issubdtype(pixels.dtype, np.floating) and not np.isfinite(pixels).all():
        raise DataError("image contains NaN or infinite values; fix or mask them first")
    scale = 1.0 if normalization == "minmax" else 255.0
    if value_range is not None:
        low, high = float(value_range[0]), float(value_range[1])
        if high < low:
            raise DataError(f"value_range must be (low, high) with low <= high, got {value_range}")
        return _to_range(pixels, low, high, scale)
    if window is not None:
        pixels = _clip_window(pixels.astype(np.float64), window)
    elif percentiles is not None:
        pixels = _clip_percentiles(pixels.astype(np.float64), percentiles)
    elif normalization == "imagenet" and pixels.dtype == np.uint8:
        return pixels.astype(np.float32)  # 8-bit data is already on 0..255
    return _to_range(pixels, float(pixels.min()), float(pixels.max()), scale)


def normalize_channels(scaled, normalization: Normalization, channel_axis: int = -1):
    """Step 2: 1 or 3 scaled channels -> 3 normalised channels (numpy or torch, float32).

    "minmax" replicates gray; "imagenet" applies ``(x - mean) / std`` per channel.
    """
    check_normalization(normalization)
    is_torch = isinstance(scaled, torch.Tensor)
    axis = channel_axis % scaled.ndim
    shape = [1] * scaled.ndim
    shape[axis] = 3
    if scaled.shape[axis] == 1:
        expand = [-1] * scaled.ndim
        expand[axis] = 3
        scaled = scaled.expand(*expand) if is_torch else np.broadcast_to(scaled, tuple(
            3 if i == axis else s for i, s in enumerate(scaled.shape)))
    if normalization == "minmax":
        return scaled.contiguous() if is_torch else np.ascontiguousarray(scaled, dtype=np.float32)
    mean = np.asarray(IMAGENET_MEAN, dtype=np.float32).reshape(shape)
    inv_std = (1.0 / np.asarray(IMAGENET_STD, dtype=np.float64)).astype(np.float32).reshape(shape)
    if is_torch:
        return (scaled - torch.from_numpy(mean)) * torch.from_numpy(inv_std)
    return ((scaled - mean) * inv_std).astype(np.float32)


def normalize_intensity(
    image: np.ndarray,
    normalization: Normalization,
    window: tuple[float, float] | None = None,
    percentiles: tuple[float, float] | None = None,
    value_range: tuple[float, float] | None = None,
) -> np.ndarray:
    """Normalise a 2D image for a SAM-family encoder.

    Args:
        image: [H,W] gray or [H,W,C] with C = 1, 2 (gray+alpha), 3 (RGB) or 4 (RGBA);
            any numeric dtype. Alpha channels are dropped; gray is replicated to 3 channels.
        normalization: "imagenet" (SAM, MobileSAM): pixels on 0..255, then
            ``(x - mean) / std`` per channel with ImageNet statistics. uint8 data is used as
            is; any other dtype, or uint8 data that was clipped, is min-max scaled to 0..255.
            "minmax" (MedSAM, LiteMedSAM): ``(x - min) / (max - min)`` to [0, 1].
            Min and max are taken over all channels together (colour balance is kept); a
            constant image becomes all zeros.
        window: optional CT window ``(level, width)``: values are first clipped to
            ``[level - width/2, level + width/2]`` (see `CT_WINDOWS`).
        percentiles: optional MR clipping ``(low, high)`` in percent, e.g. (0.5, 99.5):
            values are first clipped to these percentiles of the image.
        value_range: optional ``(low, high)`` fixed for a whole volume (see
            `intensity_range`): values are clipped to it and it replaces the slice's own
            min/max, so that every slice of a volume is scaled alike. Excludes `window` and
            `percentiles` (fold them into the range instead).

    Returns:
        float32 array [H,W,3].
    """
    scaled = scale_intensity(image, normalization, window, percentiles, value_range)
    return normalize_channels(scaled, normalization, channel_axis=-1)


def intensity_range(
    volume: np.ndarray,
    window: tuple[float, float] | None = None,
    percentiles: tuple[float, float] | None = None,
    keep_uint8: bool = False,
) -> tuple[float, float]:
    """(low, high) to pass as ``value_range`` for every slice of ``volume`` (any shape).

    The volume's min/max after the CT window or percentile clipping (as
    `normalize_intensity` does per image), else its plain min/max. With ``keep_uint8`` and
    neither window nor percentiles, uint8 data keeps (0, 255), matching "imagenet" on
    8-bit images. Pass only the channels the model uses (no alpha).
    """
    array = np.asarray(volume)
    if keep_uint8 and array.dtype == np.uint8 and window is None and percentiles is None:
        return 0.0, 255.0
    if window is not None and percentiles is not None:
        raise DataError("give either a CT window or MR percentiles, not both")
    if window is not None:
        array = _clip_window(array.astype(np.float64), window)
    if percentiles is not None:
        array = _clip_percentiles(array.astype(np.float64), percentiles)
    return float(array.min()), float(array.max())


def parse_window(text: str | None) -> tuple[float, float] | None:
    """A CT window preset name or "level,width" -> (level, width); None stays None."""
    if text is None:
        return None
    if text in CT_WINDOWS:
        return CT_WINDOWS[text]
    try:
        level, width = (float(v) for v in text.split(","))
    except ValueError:
        raise ConfigError(
            f"data.window '{text}' is neither a preset ({', '.join(CT_WINDOWS)}) nor 'level,width'"
        ) from None
    return level, width
