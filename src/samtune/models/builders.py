"""Builders that assemble `Sam` models with a ViT image encoder.

Architecture sizes are data (`SAM_VIT_SIZES`); weights and their metadata live in the
model registry, not here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from samtune.models.image_encoder_vit import ImageEncoderViT
from samtune.models.mask_decoder import MaskDecoder
from samtune.models.prompt_encoder import PromptEncoder
from samtune.models.sam import Sam
from samtune.models.transformer import TwoWayTransformer

PROMPT_EMBED_DIM = 256
VIT_PATCH_SIZE = 16
VIT_WINDOW_SIZE = 14


@dataclass(frozen=True)
class ViTSize:
    """Width, depth, heads and global-attention blocks of a SAM ViT encoder."""

    embed_dim: int
    depth: int
    num_heads: int
    global_attn_indexes: tuple[int, ...]


SAM_VIT_SIZES: dict[str, ViTSize] = {
    "vit_b": ViTSize(768, 12, 12, (2, 5, 8, 11)),
    "vit_l": ViTSize(1024, 24, 16, (5, 11, 17, 23)),
    "vit_h": ViTSize(1280, 32, 16, (7, 15, 23, 31)),
}


def build_prompt_and_decoder(
    image_size: int, embedding_size: int, num_multimask_outputs: int = 3
) -> tuple[PromptEncoder, MaskDecoder]:
    """SAM's prompt encoder and mask decoder (shared by all SAM-family encoders)."""
    prompt_encoder = PromptEncoder(
        embed_dim=PROMPT_EMBED_DIM,
        image_embedding_size=(embedding_size, embedding_size),
        input_image_size=(image_size, image_size),
        mask_in_chans=16,
    )
    mask_decoder = MaskDecoder(
        transformer_dim=PROMPT_EMBED_DIM,
        transformer=TwoWayTransformer(
            depth=2, embedding_dim=PROMPT_EMBED_DIM, num_heads=8, mlp_dim=2048
        ),
        num_multimask_outputs=num_multimask_outputs,
        iou_head_depth=3,
        iou_head_hidden_dim=256,
    )
    return prompt_encoder, mask_decoder


def build_sam_vit(
    embed_dim: int,
    depth: int,
    num_heads: int,
    global_attn_indexes: Sequence[int],
    img_size: int = 1024,
    pretrain_img_size: int = 1024,
    normalization: str = "imagenet",
    num_multimask_outputs: int = 3,
    grad_checkpointing: bool = False,
    window_size: int = VIT_WINDOW_SIZE,
) -> Sam:
    """SAM with a ViT encoder for [B, 3, img_size, img_size] inputs.

    Parameter shapes follow ``pretrain_img_size`` (official checkpoints: 1024), so
    official weights load strictly at any ``img_size`` that is a multiple of 16.
    """
    encoder = ImageEncoderViT(
        img_size=img_size,
        patch_size=VIT_PATCH_SIZE,
        embed_dim=embed_dim,
        depth=depth,
        num_heads=num_heads,
        mlp_ratio=4.0,
        out_chans=PROMPT_EMBED_DIM,
        qkv_bias=True,
        use_rel_pos=True,
        window_size=window_size,
        global_attn_indexes=tuple(global_attn_indexes),
        pretrain_img_size=pretrain_img_size,
        grad_checkpointing=grad_checkpointing,
    )
    prompt_encoder, mask_decoder = build_prompt_and_decoder(
        img_size, img_size // VIT_PATCH_SIZE, num_multimask_outputs
    )
    return Sam(
        encoder, prompt_encoder, mask_decoder, image_size=img_size, normalization=normalization
    )


def build_sam_vit_variant(variant: str, **kwargs: Any) -> Sam:
    """`build_sam_vit` with the official sizes of ``variant`` ("vit_b", "vit_l", "vit_h")."""
    if variant not in SAM_VIT_SIZES:
        raise ValueError(f"unknown SAM ViT variant {variant!r}; choose from {sorted(SAM_VIT_SIZES)}")
    size = SAM_VIT_SIZES[variant]
    return build_sam_vit(
        size.embed_dim, size.depth, size.num_heads, size.global_attn_indexes, **kwargs
    )
