"""SAM prompt encoder: points, boxes and low-resolution masks -> decoder prompt tokens.

Coordinate frame: points and box corners are (x, y) pixel coordinates in the model's
input frame, i.e. the resized and padded ``input_image_size`` image (x across, y down),
with pixel centres at integer + 0.5 after the shift applied here. Mask prompts are
logit maps at 4x the embedding resolution ([B, 1, 4h, 4w], 256 x 256 for a 64 x 64
embedding), in the same padded frame.
"""

from __future__ import annotations

import math
from typing import cast

import torch
from torch import Tensor, nn

from samtune.models.common import LayerNorm2d

# Point labels: background and foreground select a learned embedding; PAD marks a
# placeholder point that carries only ``not_a_point_embed``.
LABEL_PAD = -1
LABEL_BACKGROUND = 0
LABEL_FOREGROUND = 1


class PositionEmbeddingRandom(nn.Module):
    """Random Fourier features of 2D positions: [..., 2] in [0, 1] -> [..., 2 * num_pos_feats].

    Positions are mapped to [-1, 1], projected by a fixed Gaussian matrix [2, F] and
    encoded as ``[sin(2 pi p), cos(2 pi p)]``.
    """

    positional_encoding_gaussian_matrix: Tensor  # buffer [2, F]

    def __init__(self, num_pos_feats: int = 64, scale: float | None = None) -> None:
        super().__init__()
        scale = 1.0 if scale is None or scale <= 0.0 else scale
        self.register_buffer(
            "positional_encoding_gaussian_matrix", scale * torch.randn(2, num_pos_feats)
        )

    def encode(self, unit_coords: Tensor) -> Tensor:
        """[..., 2] (x, y) normalised to [0, 1] -> [..., 2F] features."""
        gaussian = self.positional_encoding_gaussian_matrix
        projected = (2.0 * unit_coords.to(gaussian.dtype) - 1.0) @ gaussian
        projected = (2.0 * math.pi) * projected
        return torch.cat([torch.sin(projected), torch.cos(projected)], dim=-1)

    def forward(self, size: tuple[int, int]) -> Tensor:
        """Encoding of the cell centres of an h x w grid: [2F, h, w]."""
        h, w = size
        device = self.positional_encoding_gaussian_matrix.device
        ys = (torch.arange(h, device=device, dtype=torch.float32) + 0.5) / h
        xs = (torch.arange(w, device=device, dtype=torch.float32) + 0.5) / w
        grid = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), dim=-1)  # [h, w, (x, y)]
        return self.encode(grid).permute(2, 0, 1)

    def forward_with_coords(self, coords: Tensor, image_size: tuple[int, int]) -> Tensor:
        """[B, N, 2] (x, y) pixel coordinates in an image of (H, W) -> [B, N, 2F]."""
        h, w = image_size
        size = torch.tensor([w, h], dtype=torch.float32, device=coords.device)
        return self.encode(coords.to(torch.float32) / size)


class PromptEncoder(nn.Module):
    """Embeds prompts into sparse tokens [B, K, C] and a dense map [B, C, h, w].

    Args:
        embed_dim: token width C.
        image_embedding_size: (h, w) of the image embedding the decoder sees.
        input_image_size: (H, W) of the padded model input, the frame of point/box pixels.
        mask_in_chans: hidden channels of the mask-prompt downscaler.
    """

    def __init__(
        self,
        embed_dim: int = 256,
        image_embedding_size: tuple[int, int] = (64, 64),
        input_image_size: tuple[int, int] = (1024, 1024),
        mask_in_chans: int = 16,
    ) -> None:
        super().__init__()
        self.embed_dim = embed_dim
        self.image_embedding_size = cast(tuple[int, int], tuple(image_embedding_size))
        self.input_image_size = cast(tuple[int, int], tuple(input_image_size))
        self.pe_layer = PositionEmbeddingRandom(embed_dim // 2)
        # 0: background point, 1: foreground point, 2: box top-left, 3: box bottom-right.
        self.point_embeddings = nn.ModuleList(nn.Embedding(1, embed_dim) for _ in range(4))
        self.not_a_point_embed = nn.Embedding(1, embed_dim)
        h, w = self.image_embedding_size
        self.mask_input_size = (4 * h, 4 * w)
        self.mask_downscaling = nn.Sequential(
            nn.Conv2d(1, mask_in_chans // 4, kernel_size=2, stride=2),
            LayerNorm2d(mask_in_chans // 4),
            nn.GELU(),
            nn.Conv2d(mask_in_chans // 4, mask_in_chans, kernel_size=2, stride=2),
            LayerNorm2d(mask_in_chans),
            nn.GELU(),
            nn.Conv2d(mask_in_chans, embed_dim, kernel_size=1),
        )
        self.no_mask_embed = nn.Embedding(1, embed_dim)

    def point_embedding(self, label: int) -> Tensor:
        """[1, C] learned embedding of point label 0..3 (background, foreground, box corners)."""
        return cast(nn.Embedding, self.point_embeddings[label]).weight  # a ModuleList of nn.Embedding

    def get_dense_pe(self) -> Tensor:
        """Positional encoding of the image-embedding grid: [1, C, h, w]."""
        return self.pe_layer(self.image_embedding_size).unsqueeze(0)

    def _embed_points(self, coords: Tensor, labels: Tensor, pad: bool) -> Tensor:
        """[B, N, 2] pixels, [B, N] labels -> [B, N (+1 if pad), C]."""
        coords = coords.to(torch.float32) + 0.5  # pixel index -> pixel centre
        if pad:
            # A placeholder point stands in for the missing box tokens, as in training.
            coords = torch.cat([coords, coords.new_zeros(coords.shape[0], 1, 2)], dim=1)
            labels = torch.cat([labels, labels.new_full((labels.shape[0], 1), LABEL_PAD)], dim=1)
        embedding = self.pe_layer.forward_with_coords(coords, self.input_image_size)
        labels = labels[..., None]
        embedding = torch.where(labels == LABEL_PAD, self.not_a_point_embed.weight, embedding)
        embedding = embedding + (labels == LABEL_BACKGROUND) * self.point_embedding(0)
        embedding = embedding + (labels == LABEL_FOREGROUND) * self.point_embedding(1)
        return embedding

    def _embed_boxes(self, boxes: Tensor) -> Tensor:
        """[B, 4] (x0, y0, x1, y1) pixels -> [B, 2, C] corner tokens."""
        corners = boxes.to(torch.float32).reshape(-1, 2, 2) + 0.5
        embedding = self.pe_layer.forward_with_coords(corners, self.input_image_size)
        corner_embed = torch.cat([self.point_embedding(2), self.point_embedding(3)])
        return embedding + corner_embed

    def _batch_size(
        self, points: tuple[Tensor, Tensor] | None, boxes: Tensor | None,
        masks: Tensor | None, batch_size: int | None,
    ) -> int:
        sizes = {}
        if points is not None:
            coords, labels = points
            if coords.dim() != 3 or coords.shape[-1] != 2 or labels.shape != coords.shape[:2]:
                raise ValueError(
                    f"points must be coords [B, N, 2] and labels [B, N]; got "
                    f"{tuple(coords.shape)} and {tuple(labels.shape)}"
                )
            sizes["points"] = coords.shape[0]
        if boxes is not None:
            if boxes.shape[-1] != 4 or boxes.numel() // 4 != boxes.shape[0]:
                raise ValueError(f"boxes must be [B, 4] (x0, y0, x1, y1); got {tuple(boxes.shape)}")
            sizes["boxes"] = boxes.shape[0]
        if masks is not None:
            if masks.dim() != 4 or tuple(masks.shape[1:]) != (1, *self.mask_input_size):
                raise ValueError(
                    f"mask prompts must be [B, 1, {self.mask_input_size[0]}, "
                    f"{self.mask_input_size[1]}]; got {tuple(masks.shape)}"
                )
            sizes["masks"] = masks.shape[0]
        if batch_size is not None:
            sizes["batch_size"] = batch_size
        if len(set(sizes.values())) > 1:
            raise ValueError(f"prompt batch sizes disagree: {sizes}")
        return next(iter(sizes.values()), 1)

    def forward(
        self,
        points: tuple[Tensor, Tensor] | None = None,
        boxes: Tensor | None = None,
        masks: Tensor | None = None,
        batch_size: int | None = None,
    ) -> tuple[Tensor, Tensor]:
        """Embed the prompts of B samples.

        Args:
            points: (coords [B, N, 2] (x, y) input-frame pixels, labels [B, N]: 1
                foreground, 0 background, -1 padding) or None.
            boxes: [B, 4] (x0, y0, x1, y1) input-frame pixels, or None.
            masks: [B, 1, 4h, 4w] mask logits, or None.
            batch_size: B when no prompt is given (automatic mode); if given with
                prompts it must agree with them.

        Returns:
            sparse: [B, K, C] with K = N (+1 padding point when there are points but
                no box) + 2 per box; K = 0 without points and boxes.
            dense: [B, C, h, w] from the mask, or the learned no-mask embedding.
        """
        bs = self._batch_size(points, boxes, masks, batch_size)
        weight = self.no_mask_embed.weight
        tokens = [weight.new_zeros(bs, 0, self.embed_dim)]
        if points is not None:
            tokens.append(self._embed_points(points[0], points[1], pad=boxes is None))
        if boxes is not None:
            tokens.append(self._embed_boxes(boxes))
        sparse = torch.cat(tokens, dim=1)
        if masks is not None:
            dense = self.mask_downscaling(masks)
        else:
            h, w = self.image_embedding_size
            dense = weight.reshape(1, -1, 1, 1).expand(bs, -1, h, w)
        return sparse, dense
