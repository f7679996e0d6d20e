"""Numerical parity of our SAM modules with the official `segment-anything==1.0` code.

The official package is a test-only oracle (`reference_models.segment_anything()` loads
it with torchvision stubbed and restores `sys.modules`). Both models get the same
random weights: the official model's own random init, with *every* parameter
perturbed so that zero-initialised ones (relative-position tables, `pos_embed`,
LayerNorm shifts) take part, then loaded strictly into ours. Official components are
called directly (encoder, prompt encoder, decoder), as `SamPredictor.predict_torch`
does, so no torchvision preprocessing is involved.
"""

from __future__ import annotations

from functools import partial

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from tests.helpers import reference_models
from samtune.models.builders import SAM_VIT_SIZES, build_sam_vit, build_sam_vit_variant

TOL = 1e-4
IMAGENET_MEAN = [123.675, 116.28, 103.53]
IMAGENET_STD = [58.395, 57.12, 57.375]

# Small config: embed 64, depth 2 (block 1 global), 2 heads, 128 px (8 x 8 tokens),
# window 3 so that windows need padding (8 -> 9).
SMALL = dict(embed_dim=64, depth=2, num_heads=2, global_attn_indexes=(1,), window_size=3)


@pytest.fixture(scope="module")
def sa():
    return reference_models.segment_anything()


def perturb_(model: nn.Module, seed: int, std: float = 0.1) -> nn.Module:
    """Add N(0, std) noise to every parameter (deterministic for a seed)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in model.parameters():
            param.add_(std * torch.randn(param.shape, generator=gen))
    return model


def official_small_sam(sa, img_size: int) -> nn.Module:
    """The official Sam with the SMALL encoder at `img_size`, random weights."""
    m = sa.modeling
    encoder = m.ImageEncoderViT(
        depth=SMALL["depth"],
        embed_dim=SMALL["embed_dim"],
        img_size=img_size,
        mlp_ratio=4,
        norm_layer=partial(nn.LayerNorm, eps=1e-6),
        num_heads=SMALL["num_heads"],
        patch_size=16,
        qkv_bias=True,
        use_rel_pos=True,
        global_attn_indexes=list(SMALL["global_attn_indexes"]),
        window_size=SMALL["window_size"],
        out_chans=256,
    )
    grid = img_size // 16
    prompt_encoder = m.PromptEncoder(
        embed_dim=256,
        image_embedding_size=(grid, grid),
        input_image_size=(img_size, img_size),
        mask_in_chans=16,
    )
    decoder = m.MaskDecoder(
        num_multimask_outputs=3,
        transformer=m.TwoWayTransformer(depth=2, embedding_dim=256, mlp_dim=2048, num_heads=8),
        transformer_dim=256,
        iou_head_depth=3,
        iou_head_hidden_dim=256,
    )
    return m.Sam(encoder, prompt_encoder, decoder, IMAGENET_MEAN, IMAGENET_STD)


def official_decode(official: nn.Module, embeddings, points, boxes, masks, multimask: bool):
    sparse, dense = official.prompt_encoder(points=points, boxes=boxes, masks=masks)
    return official.mask_decoder(
        image_embeddings=embeddings,
        image_pe=official.prompt_encoder.get_dense_pe(),
        sparse_prompt_embeddings=sparse,
        dense_prompt_embeddings=dense,
        multimask_output=multimask,
    )


def prompt_cases(img_size: int, seed: int) -> dict[str, dict]:
    """Point, box and point+box prompts for one image, in input-frame pixels."""
    gen = torch.Generator().manual_seed(seed)
    coords = torch.rand(1, 3, 2, generator=gen) * img_size
    labels = torch.tensor([[1, 0, 1]])
    x0, y0 = 0.2 * img_size, 0.3 * img_size
    boxes = torch.tensor([[x0, y0, x0 + 0.5 * img_size, y0 + 0.4 * img_size]])
    return {
        "points": dict(points=(coords, labels), boxes=None),
        "box": dict(points=None, boxes=boxes),
        "points+box": dict(points=(coords[:, :1], labels[:, :1]), boxes=boxes),
    }


def assert_decoders_agree(
    ours, official, ours_emb, official_emb, img_size: int, seed: int,
    multimask_modes: tuple[bool, ...] = (False, True),
) -> None:
    """Each model decodes its own embeddings of the same image; logits and IoU agree."""
    grid = img_size // 16
    mask_prompt = torch.randn(1, 1, 4 * grid, 4 * grid, generator=torch.Generator().manual_seed(seed))
    for name, prompt in prompt_cases(img_size, seed).items():
        for multimask in multimask_modes:
            for masks in (None, mask_prompt) if name == "box" else (None,):
                with torch.no_grad():
                    expected = official_decode(official, official_emb, masks=masks, multimask=multimask, **prompt)
                    got = ours.decode(ours_emb, mask_inputs=masks, multimask_output=multimask, **prompt)
                tag = f"{name}, multimask={multimask}, mask prompt={masks is not None}"
                assert got[0].shape == expected[0].shape, tag
                assert got[1].shape == expected[1].shape, tag
                assert (got[0] - expected[0]).abs().max().item() < TOL, tag
                assert (got[1] - expected[1]).abs().max().item() < TOL, tag
                # The logits carry signal: a broken decoder cannot pass by being flat.
                assert expected[0].std().item() > 0.01, tag


@pytest.mark.parametrize("variant", ["vit_b", "vit_l", "vit_h"])
def test_state_dict_keys_and_shapes_match_official(sa, variant: str) -> None:
    # Meta tensors: shapes only, no memory and no init cost (vit_h has 636M parameters).
    with torch.device("meta"):
        official = sa.sam_model_registry[variant](checkpoint=None)
        expected = {k: tuple(v.shape) for k, v in official.state_dict().items()}
        for img_size in (1024, 256):
            ours = build_sam_vit_variant(variant, img_size=img_size)
            got = {k: tuple(v.shape) for k, v in ours.state_dict().items()}
            assert got == expected, f"{variant} at {img_size} px"
    size = SAM_VIT_SIZES[variant]
    assert expected[f"image_encoder.blocks.{size.global_attn_indexes[0]}.attn.rel_pos_h"][0] == 127
    assert expected["image_encoder.blocks.0.attn.rel_pos_h"][0] == 27


def test_small_config_matches_official(sa) -> None:
    img_size = 128
    torch.manual_seed(0)
    official = perturb_(official_small_sam(sa, img_size), seed=1).eval()
    ours = build_sam_vit(**SMALL, img_size=img_size, pretrain_img_size=img_size).eval()
    ours.load_state_dict(official.state_dict(), strict=True)

    images = torch.randn(2, 3, img_size, img_size, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        expected = official.image_encoder(images)
        got = ours.encode(images)
    assert got.shape == expected.shape == (2, 256, 8, 8)
    assert (got - expected).abs().max().item() < TOL
    # The relative-position tables matter at this noise level (so parity tests them).
    with torch.no_grad():
        for block in official.image_encoder.blocks:
            block.attn.rel_pos_h.zero_()
        assert (official.image_encoder(images) - expected).abs().max().item() > 1e-2

    assert_decoders_agree(ours, official, got[:1], expected[:1], img_size, seed=3)


def test_resized_grid_matches_official_with_resized_weights(sa) -> None:
    """Our 128 px model with 256 px-shaped weights equals the official 128 px model fed
    the weights resized as documented: pos_embed bilinear (align_corners=False), global
    relative-position tables linear to 2 * 8 - 1 rows."""
    ours = build_sam_vit(**SMALL, img_size=128, pretrain_img_size=256).eval()
    perturb_(ours, seed=4)
    state = ours.state_dict()
    assert state["image_encoder.pos_embed"].shape == (1, 16, 16, 64)
    assert state["image_encoder.blocks.1.attn.rel_pos_h"].shape == (31, 32)

    resized = dict(state)
    pos = state["image_encoder.pos_embed"].permute(0, 3, 1, 2)
    resized["image_encoder.pos_embed"] = F.interpolate(
        pos, size=(8, 8), mode="bilinear", align_corners=False
    ).permute(0, 2, 3, 1)
    for axis in ("h", "w"):
        key = f"image_encoder.blocks.1.attn.rel_pos_{axis}"
        table = state[key].t().unsqueeze(0)  # [1, d, 31]
        resized[key] = F.interpolate(table, size=15, mode="linear").squeeze(0).t()
    official = official_small_sam(sa, 128).eval()
    official.load_state_dict(resized, strict=True)

    images = torch.randn(1, 3, 128, 128, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        expected = official.image_encoder(images)
        got = ours.encode(images)
    assert (got - expected).abs().max().item() < TOL


@pytest.fixture(scope="module")
def vit_b_pair(sa):
    """Official and our ViT-B SAM at 1024 px with the same random weights, and the
    embeddings of one image from each (the expensive part: ~10 s per forward)."""
    torch.manual_seed(0)
    official = sa.build_sam_vit_b(checkpoint=None).eval()
    # Small noise keeps 12 random blocks well-conditioned; the decoder gets the same
    # noise as in the small test so that its logits are large (~10).
    perturb_(official.image_encoder, seed=6, std=0.02)
    perturb_(official.prompt_encoder, seed=7, std=0.1)
    perturb_(official.mask_decoder, seed=8, std=0.1)
    ours = build_sam_vit_variant("vit_b").eval()
    ours.load_state_dict(official.state_dict(), strict=True)
    images = torch.randn(1, 3, 1024, 1024, generator=torch.Generator().manual_seed(9))
    with torch.no_grad():
        official_emb = official.image_encoder(images)
        ours_emb = ours.encode(images)
    return ours, official, ours_emb, official_emb


@pytest.mark.slow
def test_vit_b_1024_image_embeddings_match_official(vit_b_pair) -> None:
    _, _, ours_emb, official_emb = vit_b_pair
    assert ours_emb.shape == (1, 256, 64, 64)
    assert (ours_emb - official_emb).abs().max().item() < TOL


@pytest.mark.slow
def test_vit_b_1024_masks_match_official(vit_b_pair) -> None:
    ours, official, ours_emb, official_emb = vit_b_pair
    # Single-mask output only (multimask selection is covered by the small test).
    assert_decoders_agree(ours, official, ours_emb, official_emb, 1024, seed=10, multimask_modes=(False,))
