"""Masked-image modelling around a SAM-family image encoder (in the manner of SimMIM).

The encoder sees the full image grid: after its patch embedding (SAM ViT's 16 px patch
projection, TinyViT's convolutional stem) every embedding that falls in a masked patch is
replaced by one learned mask token, so windowed attention, relative positions and
TinyViT's convolutional first stage work unchanged (token-dropping MAE would break them).
A light decoder, one 1x1 convolution and a pixel shuffle (SimMIM's linear head), maps the
encoder's output embedding [B, C, S/r, S/r] back to pixels [B, 3, S, S].

Mask geometry: a boolean grid [B, S/m, S/m] over `mask_patch` m pixel squares (True =
masked); m must be a multiple of the patch-embedding stride so a mask patch covers whole
embeddings, and S must be a multiple of m.
"""

from __future__ import annotations

from typing import Any, cast

import numpy as np
import torch
from torch import Tensor, nn

from samtune.errors import ConfigError


def patch_embed_geometry(encoder: nn.Module) -> tuple[int, int, bool]:
    """(stride in pixels, channels, channels_last) of the encoder's patch-embedding output."""
    embed: Any = encoder.patch_embed  # ViT's or TinyViT's PatchEmbed, told apart by attribute names
    if hasattr(embed, "proj"):  # SAM ViT: [B, H/p, W/p, C]
        return int(embed.proj.stride[0]), int(embed.proj.out_channels), True
    # TinyViT: two Conv2dBN of stride 1 (LiteMedSAM) or 2 (MobileSAM): [B, C, H/r, W/r]
    stride = int(embed.seq[0].c.stride[0]) * int(embed.seq[2].c.stride[0])
    return stride, int(embed.seq[2].c.out_channels), False


def check_mask_geometry(encoder: nn.Module, image_size: int, mask_patch: int, ratio: float) -> None:
    """ConfigError naming the value when the masking settings cannot work for this encoder."""
    if not 0 < ratio < 1:
        raise ConfigError(f"masking.ratio {ratio} must lie strictly between 0 and 1 (SimMIM used 0.6)")
    stride, _, _ = patch_embed_geometry(encoder)
    if mask_patch < 1 or mask_patch % stride:
        raise ConfigError(
            f"masking.patch {mask_patch} must be a positive multiple of the encoder's {stride} px patch embedding"
        )
    if image_size % mask_patch:
        raise ConfigError(
            f"image size {image_size} is not divisible by masking.patch {mask_patch}; "
            f"choose a patch that divides it (e.g. 32) or another model.image_size"
        )


def random_mask(grid: int, ratio: float, rng: np.random.Generator) -> Tensor:
    """bool [grid, grid] with exactly round(ratio * grid^2) masked cells (at least 1, not all)."""
    cells = grid * grid
    count = min(max(int(round(ratio * cells)), 1), cells - 1) if cells > 1 else 1
    flat = np.zeros(cells, dtype=bool)
    flat[rng.permutation(cells)[:count]] = True
    return torch.from_numpy(flat.reshape(grid, grid))


class MaskedImageModel(nn.Module):
    """`image_encoder` + learned `mask_token` + pixel decoder: (images, mask) -> pixels.

    Args:
        image_encoder: a SAM-family image encoder (its keys stay the official ones, so
            ``image_encoder.*`` of this module's state dict is SAM's).
        embedding_size: side of the encoder's output grid for `image_size` inputs.
        image_size: S, input side in pixels.
        mask_patch: m, side of a mask patch in pixels.
        in_chans: channels to reconstruct (the model input's, 3).
    """

    def __init__(self, image_encoder: nn.Module, embedding_size: int, image_size: int, mask_patch: int,
                 in_chans: int = 3):
        super().__init__()
        self.image_encoder = image_encoder
        self.image_size = image_size
        self.mask_patch = mask_patch
        self.embed_stride, embed_dim, self.channels_last = patch_embed_geometry(image_encoder)
        self.mask_token = nn.Parameter(torch.zeros(embed_dim))
        nn.init.trunc_normal_(self.mask_token, std=0.02)
        neck = cast(nn.Sequential, image_encoder.neck)  # both encoder families end in an nn.Sequential neck
        out_chans = [m for m in neck if isinstance(m, nn.Conv2d)][-1].out_channels
        if image_size % embedding_size:
            raise ConfigError(f"image size {image_size} is not a multiple of the embedding grid {embedding_size}")
        self.out_stride = image_size // embedding_size
        self.decoder = nn.Sequential(
            nn.Conv2d(out_chans, self.out_stride**2 * in_chans, kernel_size=1),
            nn.PixelShuffle(self.out_stride),
        )
        self._mask: Tensor | None = None
        # The token goes in right after the patch embedding, before positions are added.
        image_encoder.get_submodule("patch_embed").register_forward_hook(self._insert_mask_token)

    def _insert_mask_token(self, module: nn.Module, inputs: tuple, output: Tensor) -> Tensor | None:
        if self._mask is None:
            return None
        repeat = self.mask_patch // self.embed_stride
        mask = self._mask.repeat_interleave(repeat, 1).repeat_interleave(repeat, 2).to(output.dtype)
        token = self.mask_token.to(output.dtype)
        if self.channels_last:  # [B, h, w, C]
            mask = mask[..., None]
            return output * (1 - mask) + token * mask
        mask = mask[:, None]  # [B, 1, h, w]
        return output * (1 - mask) + token[None, :, None, None] * mask

    def forward(self, images: Tensor, mask: Tensor) -> Tensor:
        """images [B, 3, S, S] (normalised), mask bool [B, S/m, S/m] -> pixels [B, 3, S, S]."""
        self._mask = mask
        try:
            features = self.image_encoder(images)
        finally:
            self._mask = None
        return self.decoder(features)


def pixel_mask(mask: Tensor, mask_patch: int) -> Tensor:
    """bool [B, S/m, S/m] -> bool [B, S, S]."""
    return mask.repeat_interleave(mask_patch, 1).repeat_interleave(mask_patch, 2)
