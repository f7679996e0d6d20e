"""Tiny registered models of both backbone families and a forward pass through all components."""

from __future__ import annotations

import torch
from torch import nn

import samtune

FAMILIES = {"sam_vit": "sam_vit_test", "tiny_vit": "tiny_vit_test"}
# Smallest inputs that keep every code path (windowed and global attention, padding-free
# windows, all TinyViT stages): the method tests run dozens of forward passes on 2 cores.
IMAGE_SIZES = {"sam_vit": 64, "tiny_vit": 32}


def build(family: str, seed: int = 0, **overrides) -> nn.Module:
    """A tiny registered test model with seeded random weights, in eval mode.

    Tensors the builders zero-initialise (relative-position tables, attention biases)
    get small random values so that every gradient path is exercised.
    """
    torch.manual_seed(seed)
    overrides = {"image_size": IMAGE_SIZES[family], **overrides}
    model = samtune.create_model(FAMILIES[family], pretrained=False, **overrides)
    with torch.no_grad():
        for param in model.parameters():
            if not param.any():
                param.normal_(0, 0.02)
    return model.eval()


def inputs(model: nn.Module, batch: int = 1, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """Images [B, 3, S, S] and one box per image [B, 4] in input pixels."""
    size = model.image_encoder.img_size
    gen = torch.Generator().manual_seed(seed)
    images = torch.rand(batch, 3, size, size, generator=gen)
    boxes = torch.tensor([[0.2, 0.25, 0.7, 0.8]]).repeat(batch, 1) * size
    return images, boxes


def predict(model: nn.Module, images: torch.Tensor, boxes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(mask logits [B, 1, h, w], predicted IoU [B, 1]) for one box per image."""
    out = model(images, boxes=boxes)
    if isinstance(out, dict):
        return out["masks"], out["iou_predictions"]
    return out[0], out[1]


def loss_of(model: nn.Module, images: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
    masks, iou = predict(model, images, boxes)
    return masks.float().sigmoid().mean() + iou.float().square().mean()
