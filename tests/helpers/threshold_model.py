"""A segmenter whose right answer is known: foreground where the image is brighter than the
middle of its intensity range.

It is the U-Net baseline's wrapper (`samtune.models.unet.UNetSegmenter`, automatic, two
outputs) around a hand-set network instead of a trained one, so inference tests can assert
that the labels written land on the bright objects of their inputs (a tiny run trained
for a few steps predicts background everywhere, which no placement error would change).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from samtune.models.unet import UNetSegmenter


class ThresholdNet(nn.Module):
    """[B, 3, S, S] min-max normalised images -> logits [B, 2, S, S]: background, foreground."""

    def forward(self, images: Tensor) -> Tensor:
        foreground = 20.0 * (images.mean(dim=1) - 0.5)  # padding (0) is background
        return torch.stack([-foreground, foreground], dim=1)


def threshold_segmenter(image_size: int = 64) -> UNetSegmenter:
    return UNetSegmenter(ThresholdNet(), image_size, num_classes_out=2).eval()


def dice(prediction, truth) -> float:
    """Dice of two binary arrays (1.0 when both are empty)."""
    prediction, truth = np.asarray(prediction).astype(bool), np.asarray(truth).astype(bool)
    total = prediction.sum() + truth.sum()
    return 1.0 if total == 0 else float(2 * (prediction & truth).sum() / total)
