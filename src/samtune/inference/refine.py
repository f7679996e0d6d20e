"""Sharpen an automatic 3D prediction with a prompted model, without ground truth.

An automatic run labels every slice on its own; a prompted model (the zero-shot model or a
prompted run) follows one structure through the volume from a box. `refine` joins them:
for each class of the automatic prediction it takes the slice where that class is largest
(the slice the automatic model is most likely right about), boxes the class's largest
connected region there, and propagates prompted from that box in both directions
(`samtune.inference.propagation`). Each class of the result is the propagated mask; a
class the automatic model did not find stays absent.

Whether it helps depends on which model is better on the structure: measured in
BENCHMARKS.md ("--refine").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

import numpy as np

from samtune.data.geometry import LoadedImage
from samtune.errors import UserError
from samtune.data.prompts import mask_box
from samtune.inference.propagation import PropagationConfig, PropagationResult, SlicePrompt, largest_component

if TYPE_CHECKING:
    from samtune.inference.predictor import Predictor


@dataclass(frozen=True)
class RefineStart:
    """Where a class's prompted propagation starts: its largest automatic slice and box."""

    label: int
    slice: int
    box: tuple[float, float, float, float]
    area: int  # automatic pixels of the class on that slice


def refine_starts(automatic: np.ndarray, axis: int = 0, classes: Sequence[int] | None = None) -> list[RefineStart]:
    """For each class value of an automatic label volume [z, y, x] (or ``classes``), the slice
    along ``axis`` where it is largest and the box (no margin) around its largest region there."""
    by_slice = np.moveaxis(np.asarray(automatic), axis, 0)
    present = [int(v) for v in np.unique(by_slice) if v != 0]
    starts = []
    for label in (present if classes is None else [c for c in classes if c in present]):
        areas = (by_slice == label).sum(axis=(1, 2))
        index = int(np.argmax(areas))
        region = largest_component(by_slice[index] == label)
        x0, y0, x1, y1 = mask_box(region)
        # A one-pixel-wide region still needs a box of positive width (x0 < x1).
        starts.append(RefineStart(label, index, (x0, y0, max(x1, x0 + 1), max(y1, y0 + 1)), int(areas[index])))
    return starts


def refine(
    prompted: Predictor,
    volume: LoadedImage | np.ndarray,
    automatic: LoadedImage | np.ndarray,
    axis: int = 0,
    config: PropagationConfig | None = None,
    classes: Sequence[int] | None = None,
) -> tuple[PropagationResult, list[RefineStart]]:
    """Propagate ``prompted`` from the largest slice of each class of ``automatic`` (labels of
    the same shape as ``volume``); returns the propagation and the starts it used."""
    if prompted.mode != "prompted":
        raise UserError("--refine needs a promptable model: the run segments automatically; "
                        "add --model NAME (e.g. --model lite_medsam) to propagate with it")
    labels = automatic.array if isinstance(automatic, LoadedImage) else np.asarray(automatic)
    shape = volume.spatial_shape if isinstance(volume, LoadedImage) else np.asarray(volume).shape[:3]
    if labels.shape != tuple(shape):
        raise UserError(f"automatic labels of shape {labels.shape} do not match the volume's {tuple(shape)}")
    starts = refine_starts(labels, axis, classes)
    if not starts:
        raise UserError("the automatic prediction is empty: nothing to refine")
    prompts = [SlicePrompt(s.slice, s.box, label=s.label) for s in starts]
    return prompted.propagate(volume, axis=axis, prompts=prompts, config=config), starts
