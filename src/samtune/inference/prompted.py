"""Prompted segmentation of one 2D image with a SAM-family model.

Coordinates are pixels of the ORIGINAL image, x to the right (columns) and y down
(rows); a box is (x0, y0, x1, y1) with x1/y1 exclusive-ish edges as in SAM (any float in
[0, W] x [0, H]). They are mapped into the model frame (longest side resized to the
model's input size, padded bottom/right) before the decoder sees them; the predicted
logits are mapped back, so the returned mask has the original image's shape.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from samtune.data.preprocess import prepare_image
from samtune.errors import UserError


@dataclass
class PromptedResult:
    mask: np.ndarray  # [H, W] bool in the original pixel grid
    logits: np.ndarray  # [H, W] float32 logits in the original pixel grid
    iou: float  # the decoder's predicted IoU


def check_prompts(
    shape: tuple[int, int],
    box: tuple[float, float, float, float] | None,
    points: list[tuple[float, float]] | None,
) -> None:
    """Raise UserError for a box or point that is not inside an image of `shape` (H, W)."""
    height, width = shape
    if box is None and not points:
        raise UserError("give a prompt: --box X0 Y0 X1 Y1 and/or --point X Y")
    if box is not None:
        x0, y0, x1, y1 = box
        if not (0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height):
            raise UserError(
                f"box ({x0:g}, {y0:g}, {x1:g}, {y1:g}) is not inside the {width}x{height} image "
                "(need 0 <= X0 < X1 <= width and 0 <= Y0 < Y1 <= height, in pixels)"
            )
    for x, y in points or []:
        if not (0 <= x < width and 0 <= y < height):
            raise UserError(f"point ({x:g}, {y:g}) is outside the {width}x{height} image")


@torch.inference_mode()
def segment_prompted(
    model: nn.Module,
    image: np.ndarray,
    box: tuple[float, float, float, float] | None = None,
    points: list[tuple[float, float]] | None = None,
    point_labels: list[int] | None = None,
    threshold: float = 0.0,
) -> PromptedResult:
    """Segment the object indicated by a box and/or points in a 2D image.

    Args:
        model: a `Sam` (see `samtune.models.sam`), with `image_size` and `normalization`.
        image: [H, W] or [H, W, C] array of raw intensities.
        box: (x0, y0, x1, y1) in original pixels.
        points: [(x, y), ...] in original pixels; `point_labels` 1 = object, 0 = background
            (default all 1).
        threshold: logit threshold (0 = probability 0.5).
    """
    check_prompts(image.shape[:2], box, points)
    model.eval()
    tensor, frame = prepare_image(image, model.image_size, model.normalization)
    device = next(model.parameters()).device
    tensor = tensor.to(device)[None]
    point_arg = None
    if points:
        labels = point_labels if point_labels is not None else [1] * len(points)
        coords = torch.as_tensor(frame.points(np.asarray(points, dtype=np.float32)), dtype=torch.float32)
        point_arg = (coords[None].to(device), torch.as_tensor(labels, dtype=torch.int64)[None].to(device))
    box_arg = None
    if box is not None:
        box_arg = torch.as_tensor(frame.boxes(np.asarray(box, dtype=np.float32)), dtype=torch.float32)[None].to(device)
    low_res, iou = model(tensor, points=point_arg, boxes=box_arg, multimask_output=False)
    logits = frame.logits_to_original(low_res[0, 0].float().cpu())
    logits = np.asarray(logits, dtype=np.float32)
    return PromptedResult(mask=logits > threshold, logits=logits, iou=float(iou[0, 0]))
