"""Intensity normalisation and the invertible resize-and-pad into a model's input frame.

Two pixel frames appear here:

- the *original* frame: the user's 2D image, ``H x W`` pixels, ``(row, col)`` indexing,
  ``(x, y)`` coordinates with x = column and y = row, both in pixels;
- the *model* frame: ``S x S`` pixels (``S`` = the model's image size, e.g. 1024 for SAM,
  256 for LiteMedSAM). The image is scaled so that its longest side becomes ``S``
  (``resized_size = (h, w)``), placed at the top-left corner and padded with zeros at the
  bottom and right, as SAM does.

`ResizePad` maps images, masks, boxes and points from the original frame to the model
frame, and logits / masks back. Masks are only ever resampled with nearest neighbour,
using exact integer index arithmetic (no floating-point scale), so that a mask taken to
the model frame and back is identical whenever the model frame is not smaller than the
original (``S >= max(H, W)``). When the image is downsampled (``S < max(H, W)``) the
round trip is lossy: rows/columns that no model pixel samples are lost, which can erase
structures thinner than ``max(H, W) / S`` pixels.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

from samtune.errors import DataError

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


def _to_three_channels(image: np.ndarray) -> np.ndarray:
    """[H,W] or [H,W,C] (C in 1, 2=gray+alpha, 3, 4=RGBA) -> float64 [H,W,3]."""
    if image.ndim == 2:
        gray = image.astype(np.float64)
        return np.repeat(gray[:, :, None], 3, axis=2)
    if image.ndim != 3:
        raise DataError(
            f"expected a 2D image [H,W] or [H,W,C], got an array of shape {image.shape}; "
            "slice volumes into 2D first"
        )
    channels = image.shape[2]
    if channels in (1, 2):  # gray, gray+alpha: alpha is display-only, drop it
        return np.repeat(image[:, :, :1].astype(np.float64), 3, axis=2)
    if channels in (3, 4):  # RGB, RGBA
        return image[:, :, :3].astype(np.float64)
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
        raise DataError(
            f"percentiles must satisfy 0 <= low < high <= 100, got ({low}, {high})"
        )
    lo_value, hi_value = np.percentile(image, [low, high])
    return np.clip(image, lo_value, hi_value)


def _minmax(image: np.ndarray, scale: float) -> np.ndarray:
    lo, hi = float(image.min()), float(image.max())
    if hi <= lo:  # constant image: no contrast to keep
        return np.zeros_like(image)
    return (image - lo) * (scale / (hi - lo))


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
    if normalization not in NORMALIZATIONS:
        raise DataError(
            f"unknown normalization '{normalization}'; choose one of {list(NORMALIZATIONS)}"
        )
    if window is not None and percentiles is not None:
        raise DataError("give either a CT window or MR percentiles, not both")
    array = np.asarray(image)
    if array.dtype == np.bool_ or not np.issubdtype(array.dtype, np.number):
        raise DataError(f"image must be numeric, got dtype {array.dtype}")
    if np.issubdtype(array.dtype, np.complexfloating):
        raise DataError("image is complex-valued; take its magnitude first")
    rgb = _to_three_channels(array)
    if not np.isfinite(rgb).all():
        raise DataError("image contains NaN or infinite values; fix or mask them first")
    if value_range is not None:
        if window is not None or percentiles is not None:
            raise DataError("value_range already includes the window/percentiles; give only one")
        return _scale_to_range(rgb, value_range, normalization)
    clipped = window is not None or percentiles is not None
    if window is not None:
        rgb = _clip_window(rgb, window)
    if percentiles is not None:
        rgb = _clip_percentiles(rgb, percentiles)

    if normalization == "minmax":
        return _minmax(rgb, 1.0).astype(np.float32)
    if array.dtype == np.uint8 and not clipped:
        pixels = rgb
    else:
        pixels = _minmax(rgb, 255.0)
    mean = np.asarray(IMAGENET_MEAN, dtype=np.float64)
    std = np.asarray(IMAGENET_STD, dtype=np.float64)
    return ((pixels - mean) / std).astype(np.float32)


def _scale_to_range(
    rgb: np.ndarray, value_range: tuple[float, float], normalization: str
) -> np.ndarray:
    low, high = float(value_range[0]), float(value_range[1])
    if high < low:
        raise DataError(f"value_range must be (low, high) with low <= high, got {value_range}")
    scale = 1.0 if normalization == "minmax" else 255.0
    if high == low:
        unit = np.zeros_like(rgb)
    else:
        unit = (np.clip(rgb, low, high) - low) * (scale / (high - low))
    if normalization == "minmax":
        return unit.astype(np.float32)
    mean = np.asarray(IMAGENET_MEAN, dtype=np.float64)
    std = np.asarray(IMAGENET_STD, dtype=np.float64)
    return ((unit - mean) / std).astype(np.float32)


def intensity_range(
    volume: np.ndarray,
    window: tuple[float, float] | None = None,
    percentiles: tuple[float, float] | None = None,
    keep_uint8: bool = False,
) -> tuple[float, float]:
    """(low, high) to pass as ``value_range`` for every slice of ``volume`` (any shape).

    The CT window's bounds after clipping the volume (as `normalize_intensity` does per
    image), else the volume's percentiles, else its min/max. With ``keep_uint8`` and
    neither window nor percentiles, uint8 data keeps (0, 255), matching "imagenet" on
    8-bit images.
    """
    array = np.asarray(volume)
    if keep_uint8 and array.dtype == np.uint8 and window is None and percentiles is None:
        return 0.0, 255.0
    if window is not None:
        array = _clip_window(array.astype(np.float64), window)
    if percentiles is not None:
        array = _clip_percentiles(array.astype(np.float64), percentiles)
    return float(array.min()), float(array.max())


def nearest_indices(size_in: int, size_out: int) -> np.ndarray:
    """Source index for each of ``size_out`` output pixels, nearest pixel centre.

    ``src = floor((dst + 0.5) * size_in / size_out)``, computed in integers so that it is
    exact: resampling ``n -> m -> n`` with ``m >= n`` returns every index unchanged.
    """
    dst = np.arange(size_out, dtype=np.int64)
    return ((2 * dst + 1) * size_in) // (2 * size_out)


def _resample_nearest(array: np.ndarray | torch.Tensor, size: tuple[int, int]):
    """Nearest-neighbour resize of the last two axes of a numpy array or tensor."""
    rows = nearest_indices(array.shape[-2], size[0])
    cols = nearest_indices(array.shape[-1], size[1])
    if isinstance(array, torch.Tensor):
        rows_t = torch.from_numpy(rows).to(array.device)
        cols_t = torch.from_numpy(cols).to(array.device)
        return array.index_select(-2, rows_t).index_select(-1, cols_t)
    return array[..., rows[:, None], cols[None, :]]


@dataclass(frozen=True)
class ResizePad:
    """Longest side to ``image_size``, then zero padding at the bottom and right.

    Attributes:
        original_size: (H, W) of the image in the original frame, pixels.
        image_size: S, side of the square model frame, pixels.
    """

    original_size: tuple[int, int]
    image_size: int

    def __post_init__(self) -> None:
        height, width = self.original_size
        if height < 1 or width < 1 or self.image_size < 1:
            raise DataError(
                f"cannot resize an image of size {self.original_size} to {self.image_size}"
            )

    @property
    def resized_size(self) -> tuple[int, int]:
        """(h, w) of the image inside the model frame, before padding (as SAM rounds it)."""
        height, width = self.original_size
        scale = self.image_size / max(height, width)
        return int(height * scale + 0.5), int(width * scale + 0.5)

    @property
    def lossless(self) -> bool:
        """True when a mask survives original -> model -> original exactly (no downsampling)."""
        return self.image_size >= max(self.original_size)

    def _scale_xy(self) -> tuple[float, float]:
        (height, width), (new_h, new_w) = self.original_size, self.resized_size
        return new_w / width, new_h / height

    def image(self, image: np.ndarray) -> torch.Tensor:
        """Normalised image [H,W,3] (original frame) -> float32 tensor [3,S,S] (model frame).

        Bilinear interpolation (half-pixel centres, no antialiasing), padding value 0.
        """
        array = np.asarray(image, dtype=np.float32)
        if array.shape[:2] != tuple(self.original_size) or array.ndim != 3:
            raise DataError(
                f"image of shape {array.shape} does not match original size {self.original_size}"
            )
        tensor = torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1)))[None]
        new_h, new_w = self.resized_size
        if (new_h, new_w) != tuple(self.original_size):
            tensor = F.interpolate(
                tensor, size=(new_h, new_w), mode="bilinear", align_corners=False, antialias=False
            )
        size = self.image_size
        tensor = F.pad(tensor, (0, size - new_w, 0, size - new_h), value=0.0)
        return tensor[0].contiguous()

    def mask(self, mask: np.ndarray | torch.Tensor) -> torch.Tensor:
        """Label mask [...,H,W] (original frame) -> int64 tensor [...,S,S], nearest, pad 0."""
        if isinstance(mask, torch.Tensor):
            tensor = mask.long()
        else:  # via int64: torch lacks some numpy dtypes (uint16, uint32)
            tensor = torch.from_numpy(np.asarray(mask).astype(np.int64))
        if tuple(tensor.shape[-2:]) != tuple(self.original_size):
            raise DataError(
                f"mask of shape {tuple(tensor.shape)} does not match original size "
                f"{self.original_size}"
            )
        resized = _resample_nearest(tensor, self.resized_size)
        new_h, new_w = self.resized_size
        size = self.image_size
        return F.pad(resized, (0, size - new_w, 0, size - new_h), value=0)

    def boxes(self, boxes: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
        """Boxes [...,4] as (x0, y0, x1, y1) in original pixels -> model-frame pixels."""
        scale_x, scale_y = self._scale_xy()
        return boxes * _as_like(boxes, [scale_x, scale_y, scale_x, scale_y])

    def points(self, points: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
        """Points [...,2] as (x, y) in original pixels -> model-frame pixels."""
        scale_x, scale_y = self._scale_xy()
        return points * _as_like(points, [scale_x, scale_y])

    def boxes_to_original(self, boxes: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
        """Inverse of `boxes`: model-frame (x0, y0, x1, y1) [...,4] -> original pixels."""
        scale_x, scale_y = self._scale_xy()
        return boxes / _as_like(boxes, [scale_x, scale_y, scale_x, scale_y])

    def points_to_original(self, points: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
        """Inverse of `points`: model-frame (x, y) [...,2] -> original pixels."""
        scale_x, scale_y = self._scale_xy()
        return points / _as_like(points, [scale_x, scale_y])

    def logits_to_original(self, logits: torch.Tensor) -> torch.Tensor:
        """Mask logits [...,s,s] covering the padded model frame -> [...,H,W] original frame.

        ``s`` is any resolution (e.g. 256 from SAM's decoder): the logits are upsampled to
        S x S, cropped to the unpadded ``resized_size`` and resized to (H, W), all bilinear
        with half-pixel centres (as SAM's ``postprocess_masks``). Threshold at 0 afterwards.
        """
        if logits.ndim < 2 or logits.shape[-1] != logits.shape[-2]:
            raise DataError(f"expected square logits [...,s,s], got shape {tuple(logits.shape)}")
        lead = logits.shape[:-2]
        flat = logits.reshape(-1, 1, *logits.shape[-2:]).float()
        size = self.image_size
        if flat.shape[-1] != size:
            flat = F.interpolate(flat, size=(size, size), mode="bilinear", align_corners=False)
        new_h, new_w = self.resized_size
        flat = flat[..., :new_h, :new_w]
        if (new_h, new_w) != tuple(self.original_size):
            flat = F.interpolate(flat, size=self.original_size, mode="bilinear", align_corners=False)
        return flat.reshape(*lead, *self.original_size)

    def mask_to_original(self, mask: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
        """Label mask [...,S,S] (model frame) -> [...,H,W] original frame, nearest neighbour.

        Returns the same type (numpy array or tensor) and dtype as given.
        """
        size = self.image_size
        if tuple(mask.shape[-2:]) != (size, size):
            raise DataError(
                f"expected a model-frame mask [...,{size},{size}], got shape {tuple(mask.shape)}"
            )
        new_h, new_w = self.resized_size
        return _resample_nearest(mask[..., :new_h, :new_w], self.original_size)


def _as_like(reference: np.ndarray | torch.Tensor, values: list[float]):
    if isinstance(reference, torch.Tensor):
        dtype = reference.dtype if reference.is_floating_point() else torch.float32
        return torch.tensor(values, dtype=dtype, device=reference.device)
    return np.asarray(values, dtype=np.float64)


def prepare_image(
    image: np.ndarray,
    image_size: int,
    normalization: Normalization,
    window: tuple[float, float] | None = None,
    percentiles: tuple[float, float] | None = None,
    value_range: tuple[float, float] | None = None,
) -> tuple[torch.Tensor, ResizePad]:
    """Normalise and resize-pad a 2D image: [H,W] or [H,W,C] -> (float32 [3,S,S], ResizePad).

    For slices of a volume pass ``value_range=intensity_range(volume, ...)`` so that all
    slices share one intensity scale.
    """
    normalized = normalize_intensity(
        image, normalization, window=window, percentiles=percentiles, value_range=value_range
    )
    transform = ResizePad(original_size=tuple(normalized.shape[:2]), image_size=int(image_size))
    return transform.image(normalized), transform
