"""Test-time augmentation: predict mirrored copies of an image and average them back.

``flips`` (nnU-Net's mirroring, in 2D): the image as it is, flipped vertically (rows
reversed), horizontally (columns reversed) and both. Each copy's class probabilities
``[C, H, W]`` are flipped back by the same flip, which is its own exact inverse (an
index reversal, no interpolation), before they are averaged, so a model that is itself
equivariant to flips gets exactly its plain prediction back.

Volumes are predicted slice by slice, so their slices are mirrored in-plane.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from samtune.errors import UserError

Flip = tuple[int, ...]  # image axes reversed: () identity, (0,) rows, (1,) columns, (0, 1) both
TTA_CHOICES = ("flips",)
FLIPS_2D: tuple[Flip, ...] = ((), (0,), (1,), (0, 1))


def tta_flips(name: str | None) -> tuple[Flip, ...]:
    """The flips of a ``--tta`` value: None -> the identity only; ``flips`` -> all four."""
    if name is None or name == "none":
        return ((),)
    if name == "flips":
        return FLIPS_2D
    raise UserError(f"--tta must be one of {', '.join(TTA_CHOICES)} (or none), got '{name}'")


def flip_image(image: np.ndarray, flip: Flip) -> np.ndarray:
    """``image`` [H, W(, C)] with the axes in ``flip`` reversed (a contiguous copy)."""
    return np.ascontiguousarray(np.flip(image, axis=flip)) if flip else image


def unflip_probabilities(probabilities: np.ndarray, flip: Flip) -> np.ndarray:
    """Undo ``flip`` on probabilities [C, H, W] (the spatial axes follow the class axis)."""
    return np.flip(probabilities, axis=tuple(a + 1 for a in flip)) if flip else probabilities


def flipped_probabilities(
    predict: Callable[[list[np.ndarray]], list[np.ndarray]], images: Sequence[np.ndarray], flips: Sequence[Flip]
) -> list[list[np.ndarray]]:
    """Per image, per flip: ``predict``'s probabilities [C, H, W] of the flipped image,
    mapped back to the image's own frame. ``predict`` takes a list of images (one batch
    per flip) and returns their probabilities."""
    per_image: list[list[np.ndarray]] = [[] for _ in images]
    for flip in flips:
        outputs = predict([flip_image(np.asarray(image), flip) for image in images])
        for index, probabilities in enumerate(outputs):
            per_image[index].append(unflip_probabilities(probabilities, flip))
    return per_image


def average(variants: Sequence[np.ndarray]) -> np.ndarray:
    """The mean of probability maps, summed in float64 (so n equal float32 maps average
    back to exactly themselves), returned as float32."""
    total = np.zeros(variants[0].shape, dtype=np.float64)
    for variant in variants:
        total += variant
    return (total / len(variants)).astype(np.float32)
