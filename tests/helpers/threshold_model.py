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


class BoxThresholdModel(nn.Module):
    """Prompted: foreground where the image is bright inside the prompt box.

    Follows `samtune.models.sam.Sam`'s `encode` / `decode` contract: embeddings [B, 1, S, S]
    (the mean channel), logits [B, 1, S, S] over the padded model frame, a quality score of 1.
    """

    def __init__(self, image_size: int = 64) -> None:
        super().__init__()
        self.image_size, self.normalization, self.num_mask_outputs = image_size, "minmax", 1

    def encode(self, images: Tensor) -> Tensor:
        return images.mean(dim=1, keepdim=True)

    def decode(self, embeddings: Tensor, points=None, boxes=None, mask_inputs=None,
               multimask_output: bool = False) -> tuple[Tensor, Tensor]:
        logits = 20.0 * (embeddings - 0.5)
        if boxes is not None:  # [B, 4] (x0, y0, x1, y1) in model-frame pixels
            size = embeddings.shape[-1]
            xs = torch.arange(size, dtype=boxes.dtype, device=boxes.device)
            x0, y0, x1, y1 = (boxes.reshape(-1, 4)[:, i, None] for i in range(4))
            inside = ((xs >= x0) & (xs <= x1))[:, None, :] & ((xs >= y0) & (xs <= y1))[:, :, None]
            logits = torch.where(inside[:, None], logits, torch.full_like(logits, -20.0))
        return logits, torch.ones(embeddings.shape[0], 1)


def dice(prediction, truth) -> float:
    """Dice of two binary arrays (1.0 when both are empty)."""
    prediction, truth = np.asarray(prediction).astype(bool), np.asarray(truth).astype(bool)
    total = prediction.sum() + truth.sum()
    return 1.0 if total == 0 else float(2 * (prediction & truth).sum() / total)
