"""Overlay PNGs: an image with its label mask drawn on top, for a person to look at."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage

from samtune.atomic import atomic_path

# One colour per class (class 1 first); cycles for more classes.
PALETTE = np.array(
    [[255, 64, 64], [64, 200, 255], [255, 220, 0], [120, 255, 120], [255, 128, 255], [255, 160, 64]],
    dtype=np.float32,
)


def to_display(image: np.ndarray) -> np.ndarray:
    """[H,W] or [H,W,C] intensities -> uint8 RGB [H,W,3] (robust min-max per image)."""
    array = np.asarray(image, dtype=np.float32)
    if array.ndim == 3:
        array = array[..., :3] if array.shape[-1] >= 3 else array[..., :1].repeat(3, axis=-1)
    else:
        array = np.repeat(array[..., None], 3, axis=-1)
    finite = array[np.isfinite(array)]
    low, high = (np.percentile(finite, [0.5, 99.5]) if finite.size else (0.0, 1.0))
    scaled = np.clip((array - low) / max(high - low, 1e-8), 0, 1) * 255
    return np.nan_to_num(scaled).astype(np.uint8)


def overlay(image: np.ndarray, labels: np.ndarray, alpha: float = 0.4) -> np.ndarray:
    """Blend class colours into the image and outline each class; returns uint8 RGB."""
    rgb = to_display(image).astype(np.float32)
    labels = np.asarray(labels)
    if labels.shape != rgb.shape[:2]:
        raise ValueError(f"mask shape {labels.shape} differs from image shape {rgb.shape[:2]}")
    for value in np.unique(labels[labels > 0]):
        region = labels == value
        colour = PALETTE[(int(value) - 1) % len(PALETTE)]
        rgb[region] = (1 - alpha) * rgb[region] + alpha * colour
        edge = region & ~ndimage.binary_erosion(region)
        rgb[edge] = colour
    return rgb.astype(np.uint8)


def save_png(array: np.ndarray, path: str | Path) -> None:
    """Write a uint8 [H,W] or [H,W,3] array as PNG, atomically."""
    path = Path(path)
    with atomic_path(path) as tmp:
        Image.fromarray(np.ascontiguousarray(array)).save(tmp, format="PNG")
