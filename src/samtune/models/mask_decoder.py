"""SAM mask decoder: image embedding + prompt tokens -> mask logits and IoU estimates.

Masks come out at 4x the embedding resolution ([B, M, 4h, 4w], 256 x 256 for a
64 x 64 embedding), in the padded model-input frame, as logits (threshold 0).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from samtune.models.common import MLP, LayerNorm2d


class MaskDecoder(nn.Module):
    """Predicts ``num_multimask_outputs + 1`` masks per sample and their IoU.

    Output token 0 is the single-mask output used when ``multimask_output`` is False;
    tokens 1..num_multimask_outputs are the multi-mask outputs (SAM's three ambiguity
    levels, or one per class in automatic multi-class segmentation).

    Args:
        transformer_dim: channel width C of the embeddings and tokens.
        transformer: module mapping (image [B, C, h, w], image_pe, tokens [B, K, C]) to
            (tokens [B, K, C], image tokens [B, h*w, C]), e.g. `TwoWayTransformer`.
        num_multimask_outputs: masks returned when ``multimask_output`` is True.
        iou_head_depth, iou_head_hidden_dim: size of the IoU prediction MLP.
    """

    def __init__(
        self,
        *,
        transformer_dim: int = 256,
        transformer: nn.Module,
        num_multimask_outputs: int = 3,
        iou_head_depth: int = 3,
        iou_head_hidden_dim: int = 256,
        activation: type[nn.Module] = nn.GELU,
    ) -> None:
        super().__init__()
        if num_multimask_outputs < 1:
            raise ValueError(f"num_multimask_outputs must be >= 1, got {num_multimask_outputs}")
        self.transformer_dim = transformer_dim
        self.transformer = transformer
        self.num_multimask_outputs = num_multimask_outputs
        self.num_mask_tokens = num_multimask_outputs + 1
        self.iou_token = nn.Embedding(1, transformer_dim)
        self.mask_tokens = nn.Embedding(self.num_mask_tokens, transformer_dim)
        self.output_upscaling = nn.Sequential(
            nn.ConvTranspose2d(transformer_dim, transformer_dim // 4, kernel_size=2, stride=2),
            LayerNorm2d(transformer_dim // 4),
            activation(),
            nn.ConvTranspose2d(transformer_dim // 4, transformer_dim // 8, kernel_size=2, stride=2),
            activation(),
        )
        self.output_hypernetworks_mlps = nn.ModuleList(
            MLP(transformer_dim, transformer_dim, transformer_dim // 8, 3)
            for _ in range(self.num_mask_tokens)
        )
        self.iou_prediction_head = MLP(
            transformer_dim, iou_head_hidden_dim, self.num_mask_tokens, iou_head_depth
        )

    def forward(
        self,
        image_embeddings: Tensor,
        image_pe: Tensor,
        sparse_prompt_embeddings: Tensor,
        dense_prompt_embeddings: Tensor,
        multimask_output: bool,
    ) -> tuple[Tensor, Tensor]:
        """Decode masks for B samples.

        Args:
            image_embeddings: [B, C, h, w], or [1, C, h, w] shared by all B prompts.
            image_pe: [1, C, h, w] positional encoding of the embedding grid.
            sparse_prompt_embeddings: [B, K, C] point/box tokens (K may be 0).
            dense_prompt_embeddings: [B, C, h, w] (or [1, ...]) mask-prompt embedding.
            multimask_output: return the multi-mask outputs (tokens 1..) instead of
                the single-mask output (token 0).

        Returns:
            masks: [B, M, 4h, 4w] logits, M = num_multimask_outputs or 1.
            iou_pred: [B, M] predicted IoU of each mask.
        """
        masks, iou_pred = self.predict_masks(
            image_embeddings, image_pe, sparse_prompt_embeddings, dense_prompt_embeddings
        )
        selected = slice(1, None) if multimask_output else slice(0, 1)
        return masks[:, selected], iou_pred[:, selected]

    def predict_masks(
        self,
        image_embeddings: Tensor,
        image_pe: Tensor,
        sparse_prompt_embeddings: Tensor,
        dense_prompt_embeddings: Tensor,
    ) -> tuple[Tensor, Tensor]:
        """All mask tokens: masks [B, num_mask_tokens, 4h, 4w], iou [B, num_mask_tokens]."""
        batch = max(
            image_embeddings.shape[0],
            sparse_prompt_embeddings.shape[0],
            dense_prompt_embeddings.shape[0],
        )
        for name, tensor in (
            ("image_embeddings", image_embeddings),
            ("sparse_prompt_embeddings", sparse_prompt_embeddings),
            ("dense_prompt_embeddings", dense_prompt_embeddings),
        ):
            if tensor.shape[0] not in (1, batch):
                raise ValueError(
                    f"{name} has batch {tensor.shape[0]}; expected {batch} or 1 "
                    "(one embedding per sample, or one shared by all samples)"
                )
        output_tokens = torch.cat([self.iou_token.weight, self.mask_tokens.weight], dim=0)
        sparse = sparse_prompt_embeddings.expand(batch, -1, -1)
        tokens = torch.cat([output_tokens.unsqueeze(0).expand(batch, -1, -1), sparse], dim=1)

        # Broadcasting replaces the official per-prompt repeat of a single embedding.
        src = (image_embeddings + dense_prompt_embeddings).expand(batch, -1, -1, -1)
        b, c, h, w = src.shape
        hs, src = self.transformer(src, image_pe, tokens)
        iou_token_out = hs[:, 0]
        mask_tokens_out = hs[:, 1 : 1 + self.num_mask_tokens]

        upscaled = self.output_upscaling(src.transpose(1, 2).reshape(b, c, h, w))
        hyper_in = torch.stack(
            [mlp(mask_tokens_out[:, i]) for i, mlp in enumerate(self.output_hypernetworks_mlps)],
            dim=1,
        )  # [B, num_mask_tokens, C / 8]
        b, c_up, h_up, w_up = upscaled.shape
        masks = (hyper_in @ upscaled.reshape(b, c_up, h_up * w_up)).reshape(b, -1, h_up, w_up)
        iou_pred = self.iou_prediction_head(iou_token_out)
        return masks, iou_pred
