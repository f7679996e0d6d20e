"""Model-ready images: the invertible resize-and-pad into a model's input frame.

Intensity normalisation lives in `samtune.data.intensity` and is re-exported here.

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

import numpy as np
import torch
import torch.nn.functional as F

from samtune.data.intensity import (  # re-exported: callers import them from here
    CT_WINDOWS,
    IMAGENET_MEAN,
    IMAGENET_STD,
    MR_PERCENTILES,
    NORMALIZATIONS,
    Normalization,
    check_normalization,
    intensity_range,
    normalize_channels,
    normalize_intensity,
    scale_intensity,
)
from samtune.errors import DataError

__all__ = [
    "CT_WINDOWS", "IMAGENET_MEAN", "IMAGENET_STD", "MR_PERCENTILES", "NORMALIZATIONS",
    "Normalization", "PendingImage", "ResizePad", "intensity_range", "nearest_indices", "normalize_channels",
    "normalize_intensity", "prepare_image", "scale_intensity",
]


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

    def scaled_image(self, scaled: np.ndarray, normalization: Normalization) -> torch.Tensor:
        """`scale_intensity` output [H,W,1|3] -> normalised float32 tensor [3,S,S].

        Bilinear interpolation (half-pixel centres, no antialiasing), padding value 0. The
        normalisation is applied after resizing (per-channel normalisation commutes with
        bilinear resizing), so a gray image is resized once, not three times.
        """
        return self.pending_image(scaled, normalization).build()

    def pending_image(self, scaled: np.ndarray, normalization: Normalization) -> PendingImage:
        """`scaled_image` before its last step: the resized pixels, still 1 or 3 channels."""
        check_normalization(normalization)
        array = np.asarray(scaled, dtype=np.float32)
        if array.ndim != 3 or array.shape[:2] != tuple(self.original_size):
            raise DataError(
                f"image of shape {array.shape} does not match original size {self.original_size}"
            )
        tensor = torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1)))[None]
        new_h, new_w = self.resized_size
        if (new_h, new_w) != tuple(self.original_size):
            tensor = F.interpolate(
                tensor, size=(new_h, new_w), mode="bilinear", align_corners=False, antialias=False
            )
        return PendingImage(tensor[0], self.image_size, normalization)

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


@dataclass(frozen=True)
class PendingImage:
    """A model input before its last, cheap step: resized pixels [C,h,w] (C = 1 for gray,
    3 for colour) that `build` pads to [3,S,S] and normalises.

    `ResizePad.scaled_image` is ``pending_image(...).build()``. A DataLoader worker sends
    this instead of the [3,S,S] tensor: a gray 1024 px slice is about a quarter of the
    bytes through shared memory (allocating shared memory is most of what a transfer
    costs), and the training process builds the input where it runs, on the GPU there.
    `build` does the same float32 operations in the same order on any device, so on the
    CPU its tensor is bit-identical to building it in the worker.
    """

    resized: torch.Tensor
    image_size: int
    normalization: Normalization

    @property
    def shape(self) -> tuple[int, int, int]:
        """The built tensor's shape."""
        return 3, self.image_size, self.image_size

    def build(self, device: torch.device | str | None = None, out: torch.Tensor | None = None) -> torch.Tensor:
        """The [3,S,S] model input, on `device`; written into `out` when given (a batch row)."""
        resized = self.resized if device is None else self.resized.to(device, non_blocking=True)
        _, new_h, new_w = resized.shape
        if out is None:
            out = torch.empty(3, self.image_size, self.image_size, dtype=torch.float32, device=resized.device)
        out[:, new_h:].zero_()  # the padding, bottom and right
        out[:, :new_h, new_w:].zero_()
        view, image = out[:, :new_h, :new_w], resized.expand(3, new_h, new_w)
        if self.normalization == "imagenet":  # (x - mean) / std per channel, written once into the frame
            torch.sub(image, torch.tensor(IMAGENET_MEAN, dtype=torch.float32, device=out.device)[:, None, None],
                      out=view)
            view.div_(torch.tensor(IMAGENET_STD, dtype=torch.float32, device=out.device)[:, None, None])
        else:
            view.copy_(image)
        return out

    def pin_memory(self) -> PendingImage:
        """What a DataLoader's pin-memory thread calls (it pins anything with this method)."""
        return PendingImage(self.resized.pin_memory(), self.image_size, self.normalization)


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
    scaled = scale_intensity(
        image, normalization, window=window, percentiles=percentiles, value_range=value_range
    )
    transform = ResizePad(original_size=tuple(scaled.shape[:2]), image_size=int(image_size))
    return transform.scaled_image(scaled, normalization), transform
