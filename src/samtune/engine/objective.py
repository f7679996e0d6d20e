"""Segmentation objectives: what the model predicts from a batch and the loss on it.

Batches are dicts (all in the model frame, S x S pixels):
    image  [B, 3, S, S] float   normalised, resized and padded
    mask   [B, S, S] long       class index per pixel (0 = background)
    boxes  [B, 4] float         (prompted) x0, y0, x1, y1
    points [B, N, 2] float, point_labels [B, N] long (prompted; 1 object, 0 background)
    target [B, S, S] long       (prompted) 1 inside the prompted object, else 0
    index  [B] long             sample index (key of the embedding cache)

Two objectives share one protocol (`SegmentationObjective`); `make_objective` picks one
by the task mode:

- `AutomaticObjective` predicts ``num_classes + 1`` channels (background first) from no
  prompt and trains softmax Dice + cross-entropy (MONAI ``DiceCELoss``; Dice excludes the
  background channel);
- `PromptedObjective` predicts one mask per prompt and trains sigmoid Dice + binary
  cross-entropy against the prompted object's mask.
"""

from __future__ import annotations

from typing import Protocol, cast, runtime_checkable

import torch
import torch.nn.functional as F
from monai.losses import DiceCELoss
from torch import nn

from samtune.models.interface import SegmentationModel


@runtime_checkable
class SegmentationObjective(Protocol):
    """What the trainer needs from an objective."""

    @property
    def num_mask_outputs(self) -> int:
        """Decoder channels this objective needs (configures the mask decoder)."""
        ...

    @property
    def eval_classes(self) -> list[int]:
        """Class values validation Dice averages over."""
        ...

    def logits(self, model: nn.Module, batch: dict, embeddings: torch.Tensor | None = None) -> torch.Tensor:
        """Logits [B, C, S, S] in the model frame."""
        ...

    def loss(self, logits: torch.Tensor, batch: dict) -> torch.Tensor: ...

    def predict(self, logits: torch.Tensor) -> torch.Tensor:
        """Hard labels [B, S, S]."""
        ...

    def truth(self, batch: dict) -> torch.Tensor:
        """The labels `predict` is scored against, [B, S, S]."""
        ...


def _to_frame(low_res: torch.Tensor, batch: dict) -> torch.Tensor:
    """Decoder logits [B, C, h, w] upsampled (bilinear, float32) to the model frame; a
    deep-supervised U-Net in training gives [B, outputs, C, h, w], upsampled per output."""
    size = batch["image"].shape[-2:] if "image" in batch else batch["mask"].shape[-2:]
    if low_res.dim() == 5:
        b, n = low_res.shape[:2]
        flat = F.interpolate(low_res.flatten(0, 1).float(), size=tuple(size), mode="bilinear", align_corners=False)
        return flat.unflatten(0, (b, n))
    return F.interpolate(low_res.float(), size=tuple(size), mode="bilinear", align_corners=False)


def _scaled_loss(loss_fn: nn.Module, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The loss of [B, C, S, S] logits; for [B, outputs, C, S, S] (deep supervision) the sum
    over outputs weighted as nnU-Net weights its scales (1/2^i, normalised)."""
    if logits.dim() == 5:
        from samtune.models.unet import deep_supervision_weights

        weights = deep_supervision_weights(logits.shape[1])
        return cast(torch.Tensor, sum(w * loss_fn(logits[:, i], target) for i, w in enumerate(weights)))
    return loss_fn(logits, target)


class AutomaticObjective:
    """No prompt; one channel per class plus background; softmax Dice + CE."""

    def __init__(self, num_classes: int, dice_weight: float = 1.0, ce_weight: float = 1.0):
        self.num_classes = num_classes
        self.loss_fn = DiceCELoss(
            include_background=False, to_onehot_y=True, softmax=True, lambda_dice=dice_weight, lambda_ce=ce_weight
        )

    @property
    def num_mask_outputs(self) -> int:
        return self.num_classes + 1

    @property
    def eval_classes(self) -> list[int]:
        return list(range(1, self.num_classes + 1))

    def logits(self, model: nn.Module, batch: dict, embeddings: torch.Tensor | None = None) -> torch.Tensor:
        segmenter = cast(SegmentationModel, model)  # a Sam or UNetSegmenter
        if embeddings is None:
            embeddings = segmenter.encode(batch["image"])
        low_res, _ = segmenter.decode(embeddings, multimask_output=True)
        return _to_frame(low_res, batch)

    def loss(self, logits: torch.Tensor, batch: dict) -> torch.Tensor:
        return _scaled_loss(self.loss_fn, logits, batch["mask"][:, None].long())

    def predict(self, logits: torch.Tensor) -> torch.Tensor:
        return logits.argmax(dim=1)  # class indices

    def truth(self, batch: dict) -> torch.Tensor:
        return batch["mask"]


class PromptedObjective:
    """A box and/or points per sample; one mask channel; sigmoid Dice + BCE."""

    def __init__(self, dice_weight: float = 1.0, ce_weight: float = 1.0):
        self.loss_fn = DiceCELoss(sigmoid=True, lambda_dice=dice_weight, lambda_ce=ce_weight)

    @property
    def num_mask_outputs(self) -> int:
        return 1

    @property
    def eval_classes(self) -> list[int]:
        return [1]

    def logits(self, model: nn.Module, batch: dict, embeddings: torch.Tensor | None = None) -> torch.Tensor:
        segmenter = cast(SegmentationModel, model)  # a Sam
        if embeddings is None:
            embeddings = segmenter.encode(batch["image"])
        points = None
        if batch.get("points") is not None:
            points = (batch["points"], batch["point_labels"])
        low_res, _ = segmenter.decode(embeddings, points=points, boxes=batch.get("boxes"), multimask_output=False)
        return _to_frame(low_res, batch)

    def loss(self, logits: torch.Tensor, batch: dict) -> torch.Tensor:
        return _scaled_loss(self.loss_fn, logits, batch["target"][:, None].float())

    def predict(self, logits: torch.Tensor) -> torch.Tensor:
        return (logits[:, 0] > 0).long()  # 0/1

    def truth(self, batch: dict) -> torch.Tensor:
        return batch["target"]


def make_objective(mode: str, num_classes: int, dice_weight: float = 1.0, ce_weight: float = 1.0) -> SegmentationObjective:
    """The objective of a task mode ("automatic" or "prompted", as `TaskConfig.mode`)."""
    if mode == "automatic":
        return AutomaticObjective(num_classes, dice_weight, ce_weight)
    if mode == "prompted":
        return PromptedObjective(dice_weight, ce_weight)
    raise ValueError(f"unknown task mode {mode!r}; expected automatic or prompted")
