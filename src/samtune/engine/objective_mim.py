"""The masked-image-modelling objective: L1 reconstruction of masked pixels only (SimMIM).

Batch keys: ``image`` [B, 3, S, S] (normalised model input, also the target),
``mim_mask`` bool [B, S/m, S/m] (True = masked patch), ``valid`` bool [B, S, S] (inside
the image, not the resize padding). Only pixels that are masked and valid count.
With ``norm_target`` each mask patch of the target is standardised by its own mean and
standard deviation over channels and pixels (MAE's per-patch normalised target).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from samtune.models.mim_decoder import pixel_mask


def normalise_patches(target: Tensor, patch: int, eps: float = 1e-6) -> Tensor:
    """[B, C, S, S] -> same shape, each patch x patch square (all channels) standardised."""
    b, c, s, _ = target.shape
    g = s // patch
    cells = target.reshape(b, c, g, patch, g, patch).permute(0, 2, 4, 1, 3, 5).reshape(b, g, g, -1)
    mean = cells.mean(dim=-1, keepdim=True)
    var = cells.var(dim=-1, keepdim=True, unbiased=False)
    cells = (cells - mean) / torch.sqrt(var + eps)
    return cells.reshape(b, g, g, c, patch, patch).permute(0, 3, 1, 4, 2, 5).reshape(b, c, s, s)


class MaskedImageObjective:
    """What `Trainer` calls: `logits(model, batch, _)` -> reconstruction, `loss(recon, batch)`."""

    def __init__(self, mask_patch: int, norm_target: bool = False):
        self.mask_patch = mask_patch
        self.norm_target = norm_target

    def logits(self, model: nn.Module, batch: dict[str, Any], embeddings: Tensor | None = None) -> Tensor:
        return model(batch["image"], batch["mim_mask"])

    def target(self, batch: dict[str, Any]) -> Tensor:
        image = batch["image"].float()
        return normalise_patches(image, self.mask_patch) if self.norm_target else image

    def weights(self, batch: dict[str, Any]) -> Tensor:
        """float [B, 1, S, S]: 1 where a pixel counts in the loss."""
        counted = pixel_mask(batch["mim_mask"], self.mask_patch) & batch["valid"]
        return counted[:, None].float()

    def loss(self, reconstruction: Tensor, batch: dict[str, Any]) -> Tensor:
        weights = self.weights(batch)
        error = (reconstruction - self.target(batch)).abs() * weights
        return error.sum() / (weights.sum() * reconstruction.shape[1]).clamp_min(1.0)
