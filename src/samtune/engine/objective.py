"""Segmentation objectives: what the model predicts from a batch and the loss on it.

Batches are dicts (all in the model frame, S x S pixels):
    image  [B, 3, S, S] float   normalised, resized and padded
    mask   [B, S, S] long       class index per pixel (0 = background)
    boxes  [B, 4] float         (prompted) x0, y0, x1, y1
    points [B, N, 2] float, point_labels [B, N] long (prompted; 1 object, 0 background)
    target [B, S, S] long       (prompted) 1 inside the prompted object, else 0
    index  [B] long             sample index (key of the embedding cache)

Automatic mode predicts ``num_classes + 1`` channels (background first) from no prompt
and trains softmax Dice + cross-entropy (MONAI ``DiceCELoss``; Dice excludes the
background channel). Prompted mode predicts one mask per prompt and trains sigmoid Dice +
binary cross-entropy against the prompted object's mask.
"""

from __future__ import annotations

from typing import cast

import torch
import torch.nn.functional as F
from monai.losses import DiceCELoss
from torch import nn

from samtune.models.interface import SegmentationModel


class SegmentationObjective:
    def __init__(self, mode: str, num_classes: int, dice_weight: float = 1.0, ce_weight: float = 1.0):
        self.mode = mode
        self.num_classes = num_classes
        if mode == "automatic":
            self.loss_fn = DiceCELoss(
                include_background=False, to_onehot_y=True, softmax=True, lambda_dice=dice_weight, lambda_ce=ce_weight
            )
        else:
            self.loss_fn = DiceCELoss(sigmoid=True, lambda_dice=dice_weight, lambda_ce=ce_weight)

    @property
    def num_mask_outputs(self) -> int:
        """Decoder channels this objective needs (configures the mask decoder)."""
        return self.num_classes + 1 if self.mode == "automatic" else 1

    def logits(self, model: nn.Module, batch: dict, embeddings: torch.Tensor | None = None) -> torch.Tensor:
        """Logits [B, C, S, S] in the model frame."""
        segmenter = cast(SegmentationModel, model)  # a Sam or UNetSegmenter
        if embeddings is None:
            embeddings = segmenter.encode(batch["image"])
        if self.mode == "automatic":
            low_res, _ = segmenter.decode(embeddings, multimask_output=True)
        else:
            points = None
            if batch.get("points") is not None:
                points = (batch["points"], batch["point_labels"])
            low_res, _ = segmenter.decode(embeddings, points=points, boxes=batch.get("boxes"), multimask_output=False)
        size = batch["image"].shape[-2:] if "image" in batch else batch["mask"].shape[-2:]
        if low_res.dim() == 5:  # a deep-supervised U-Net in training: [B, outputs, C, S, S]
            b, n = low_res.shape[:2]
            flat = F.interpolate(low_res.flatten(0, 1).float(), size=tuple(size), mode="bilinear", align_corners=False)
            return flat.unflatten(0, (b, n))
        return F.interpolate(low_res.float(), size=tuple(size), mode="bilinear", align_corners=False)

    def target(self, batch: dict) -> torch.Tensor:
        if self.mode == "automatic":
            return batch["mask"][:, None].long()
        return batch["target"][:, None].float()

    def loss(self, logits: torch.Tensor, batch: dict) -> torch.Tensor:
        """The loss of [B, C, S, S] logits; for [B, outputs, C, S, S] (deep supervision) the
        sum over outputs weighted as nnU-Net weights its scales (1/2^i, normalised)."""
        if logits.dim() == 5:
            from samtune.models.unet import deep_supervision_weights

            target = self.target(batch)
            weights = deep_supervision_weights(logits.shape[1])
            return sum(w * self.loss_fn(logits[:, i], target) for i, w in enumerate(weights))
        return self.loss_fn(logits, self.target(batch))

    def predict(self, logits: torch.Tensor) -> torch.Tensor:
        """Hard labels [B, S, S]: class indices (automatic) or 0/1 (prompted)."""
        if self.mode == "automatic":
            return logits.argmax(dim=1)
        return (logits[:, 0] > 0).long()

    def truth(self, batch: dict) -> torch.Tensor:
        return batch["mask"] if self.mode == "automatic" else batch["target"]

    @property
    def eval_classes(self) -> list[int]:
        return list(range(1, self.num_classes + 1)) if self.mode == "automatic" else [1]
