"""Behaviour of our SAM modules that the official code does not cover: hand-computed
values of the building blocks, per-image batching, automatic (no-prompt) mode,
resolution changes and gradient checkpointing. No oracle here (see test_sam_parity)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from samtune.models.builders import build_sam_vit, build_sam_vit_variant
from samtune.models import image_encoder_vit as vit
from samtune.models.common import LayerNorm2d
from samtune.models.image_encoder_vit import (
    rel_pos_attention,
    resize_rel_pos,
    window_partition,
    window_unpartition,
)
from samtune.models.prompt_encoder import PromptEncoder
from samtune.models.sam import Sam

# 64 px, 4 x 4 tokens; block 0 windowed (window 3: the grid pads to 6), block 1 global.
TINY = dict(
    embed_dim=32, depth=2, num_heads=2, global_attn_indexes=(1,), window_size=3,
    img_size=64, pretrain_img_size=64,
)


def perturb_(model: nn.Module, seed: int, std: float = 0.05) -> nn.Module:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in model.parameters():
            param.add_(std * torch.randn(param.shape, generator=gen))
    return model


@pytest.fixture(scope="module")
def tiny_sam() -> Sam:
    torch.manual_seed(0)
    return perturb_(build_sam_vit(**TINY), seed=1).eval()


# --- building blocks, hand-computed --------------------------------------------------


def test_layer_norm_2d_normalises_channels_of_each_pixel() -> None:
    norm = LayerNorm2d(3)
    with torch.no_grad():
        norm.weight.copy_(torch.tensor([1.0, 2.0, 1.0]))
        norm.bias.copy_(torch.tensor([0.0, 0.0, 5.0]))
    x = torch.tensor([1.0, 2.0, 3.0]).reshape(1, 3, 1, 1).expand(1, 3, 2, 2)
    out = norm(x)
    z = math.sqrt(1.5)  # (x - 2) / std, biased variance 2/3
    expected = torch.tensor([-z, 0.0, z + 5.0])
    assert torch.allclose(out[0, :, 1, 0], expected, atol=1e-5)


def test_resize_rel_pos_is_linear_with_half_pixel_centres() -> None:
    table = torch.arange(9.0)[:, None].expand(9, 2)  # row i holds i
    resized = resize_rel_pos(table, 5)
    # Output row j samples input coordinate (j + 0.5) * 9 / 5 - 0.5.
    expected = torch.tensor([0.4, 2.2, 4.0, 5.8, 7.6])
    assert torch.allclose(resized[:, 0], expected, atol=1e-5)
    assert resize_rel_pos(table, 9) is table


def explicit_rel_pos_attention(q, k, v, table_h, table_w, h, w, scale):
    """softmax(q.k * scale + q.(Rh[row(n) - row(m)] + Rw[col(n) - col(m)])) v, spelled out
    with an [N, N, d] table of pair embeddings."""
    rows, cols = torch.arange(h * w) // w, torch.arange(h * w) % w
    pair = table_h[rows[:, None] - rows[None, :] + h - 1] + table_w[cols[:, None] - cols[None, :] + w - 1]
    scores = (q * scale) @ k.transpose(-1, -2) + torch.einsum("zhnd,nmd->zhnm", q, pair)
    return scores.softmax(-1) @ v


@pytest.mark.parametrize("path", ["chunked (CPU inference)", "folded (autograd)"])
def test_rel_pos_attention_equals_explicit_bias(monkeypatch, path: str) -> None:
    # Chunks of 5 queries over the 12 tokens: 5 + 5 + 2.
    monkeypatch.setattr(vit, "_BIAS_CHUNK_ELEMENTS", 1)
    monkeypatch.setattr(vit, "_MIN_QUERY_CHUNK", 5)
    gen = torch.Generator().manual_seed(0)
    b, heads, h, w, d = 2, 3, 3, 4, 8
    q, k, v = (torch.randn(b, heads, h * w, d, generator=gen) for _ in range(3))
    table_h = torch.randn(2 * h - 1, d, generator=gen)
    table_w = torch.randn(2 * 6 - 1, d, generator=gen)  # longer than 2w-1: resized
    scale = d**-0.5
    expected_tables = (table_h, resize_rel_pos(table_w, 2 * w - 1))

    def unexpected(*args, **kwargs):
        raise AssertionError("rel_pos_attention dispatched to the wrong evaluation")

    # Pin the dispatch: CPU without autograd -> chunked, with autograd -> folded.
    other = "_folded_attention" if path.startswith("chunked") else "_chunked_bias_attention"
    monkeypatch.setattr(vit, other, unexpected)
    if path.startswith("chunked"):
        with torch.no_grad():
            out = rel_pos_attention(q, k, v, table_h, table_w, (h, w), scale)
            expected = explicit_rel_pos_attention(q, k, v, *expected_tables, h, w, scale)
        assert (out - expected).abs().max().item() < 1e-5
        return

    leaves = [t.clone().requires_grad_() for t in (q, k, v, table_h, table_w)]
    out = rel_pos_attention(*leaves[:3], leaves[3], leaves[4], (h, w), scale)
    weight = torch.randn(out.shape, generator=gen)
    (out * weight).sum().backward()
    ref = [t.clone().requires_grad_() for t in (q, k, v, table_h, table_w)]
    expected = explicit_rel_pos_attention(
        *ref[:3], ref[3], resize_rel_pos(ref[4], 2 * w - 1), h, w, scale
    )
    (expected * weight).sum().backward()
    assert (out - expected).abs().max().item() < 1e-5
    for name, got, want in zip("q k v rel_pos_h rel_pos_w".split(), leaves, ref):
        assert (got.grad - want.grad).abs().max().item() < 1e-4, name
    assert ref[3].grad.abs().max().item() > 1e-3  # the bias really carries gradient


def test_window_partition_pads_and_round_trips() -> None:
    x = torch.arange(2 * 5 * 7 * 3, dtype=torch.float32).reshape(2, 5, 7, 3)
    windows, padded = window_partition(x, 3)
    assert padded == (6, 9)
    assert windows.shape == (2 * 2 * 3, 3, 3, 3)
    assert torch.equal(windows[1], x[0, 0:3, 3:6])  # batch 0, window row 0, column 1
    assert torch.equal(windows[5, :2, :1], x[0, 3:5, 6:7])  # bottom-right window of image 0
    assert windows[5, 2:].abs().sum() == 0 and windows[5, :, 1:].abs().sum() == 0  # zero padding
    assert torch.equal(window_unpartition(windows, 3, padded, (5, 7)), x)


# --- prompt encoder, hand-computed ---------------------------------------------------


@pytest.fixture()
def identity_pe_encoder() -> PromptEncoder:
    """embed_dim 4, Gaussian matrix = identity: PE(x, y) = [sin 2pi u, sin 2pi v, cos .., cos ..]
    with u = 2x/W - 1, v = 2y/H - 1; the learned embeddings are one-hot-ish markers."""
    enc = PromptEncoder(embed_dim=4, image_embedding_size=(4, 4), input_image_size=(64, 32), mask_in_chans=4)
    with torch.no_grad():
        enc.pe_layer.positional_encoding_gaussian_matrix.copy_(torch.eye(2))
        for i, emb in enumerate(enc.point_embeddings):
            emb.weight.fill_(10.0 ** (i + 1))
        enc.not_a_point_embed.weight.fill_(-7.0)
        enc.no_mask_embed.weight.copy_(torch.tensor([[1.0, 2.0, 3.0, 4.0]]))
    return enc


def test_point_and_box_embeddings(identity_pe_encoder: PromptEncoder) -> None:
    enc = identity_pe_encoder  # input frame: H = 64, W = 32
    # Pixel (15.5, 15.5) -> centre (16, 16) -> unit (0.5, 0.25) -> (0, -0.5) -> angles (0, -pi).
    coords = torch.tensor([[[15.5, 15.5], [15.5, 15.5], [15.5, 15.5]]])
    labels = torch.tensor([[1, 0, -1]])
    sparse, dense = enc(points=(coords, labels))
    pe = torch.tensor([0.0, 0.0, 1.0, -1.0])
    assert sparse.shape == (1, 4, 4)  # 3 points + the padding point (no box)
    assert torch.allclose(sparse[0, 0], pe + 100.0, atol=1e-5)  # foreground: + point_embeddings[1]
    assert torch.allclose(sparse[0, 1], pe + 10.0, atol=1e-5)  # background: + point_embeddings[0]
    assert torch.allclose(sparse[0, 2], torch.full((4,), -7.0))  # padding: not_a_point only
    assert torch.allclose(sparse[0, 3], torch.full((4,), -7.0))
    assert torch.equal(dense, torch.tensor([1.0, 2.0, 3.0, 4.0]).reshape(1, 4, 1, 1).expand(1, 4, 4, 4))

    # Box (-0.5, -0.5, 31.5, 63.5): corners at unit (0, 0) and (1, 1) -> angles -2pi and 2pi.
    sparse, _ = enc(points=(coords[:, :1], labels[:, :1]), boxes=torch.tensor([[-0.5, -0.5, 31.5, 63.5]]))
    assert sparse.shape == (1, 3, 4)  # no padding point when a box is present
    corner = torch.tensor([0.0, 0.0, 1.0, 1.0])
    assert torch.allclose(sparse[0, 1], corner + 1000.0, atol=1e-5)
    assert torch.allclose(sparse[0, 2], corner + 10000.0, atol=1e-5)


def test_dense_positional_encoding_is_x_then_y(identity_pe_encoder: PromptEncoder) -> None:
    pe = identity_pe_encoder.get_dense_pe()
    assert pe.shape == (1, 4, 4, 4)
    # Cell (row 0, col 1): centre unit x = 1.5/4 -> angle -pi/2; y = 0.5/4 -> angle -3pi/2.
    assert torch.allclose(pe[0, :, 0, 1], torch.tensor([-1.0, 1.0, 0.0, 0.0]), atol=1e-5)


def test_automatic_mode_prompt_shapes_and_batch_checks(identity_pe_encoder: PromptEncoder) -> None:
    sparse, dense = identity_pe_encoder(batch_size=3)
    assert sparse.shape == (3, 0, 4)
    assert dense.shape == (3, 4, 4, 4)
    with pytest.raises(ValueError, match="disagree"):
        identity_pe_encoder(boxes=torch.zeros(2, 4), batch_size=3)
    with pytest.raises(ValueError, match=r"\[B, 1, 16, 16\]"):
        identity_pe_encoder(masks=torch.zeros(1, 1, 8, 8))


# --- Sam ---------------------------------------------------------------------------


def test_batch_of_images_with_own_boxes_equals_single_calls(tiny_sam: Sam) -> None:
    gen = torch.Generator().manual_seed(2)
    images = torch.randn(3, 3, 64, 64, generator=gen)
    boxes = torch.tensor([[4.0, 6.0, 40.0, 30.0], [10.0, 10.0, 60.0, 62.0], [0.0, 20.0, 20.0, 50.0]])
    points = (torch.rand(3, 2, 2, generator=gen) * 64, torch.tensor([[1, 0], [1, 1], [0, 1]]))
    with torch.no_grad():
        masks, iou = tiny_sam(images, points=points, boxes=boxes, multimask_output=True)
        singles = [
            tiny_sam(images[i : i + 1], points=(points[0][i : i + 1], points[1][i : i + 1]),
                     boxes=boxes[i : i + 1], multimask_output=True)
            for i in range(3)
        ]
    assert masks.shape == (3, 3, 16, 16) and iou.shape == (3, 3)
    for i, (m, s) in enumerate(singles):
        assert (masks[i : i + 1] - m).abs().max().item() < 1e-5
        assert (iou[i : i + 1] - s).abs().max().item() < 1e-5
    assert (masks[0] - masks[1]).abs().max().item() > 1e-2  # samples really differ


def test_one_embedding_broadcasts_over_prompts(tiny_sam: Sam) -> None:
    images = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(3))
    boxes = torch.tensor([[4.0, 6.0, 40.0, 30.0], [10.0, 10.0, 60.0, 62.0]])
    with torch.no_grad():
        emb = tiny_sam.encode(images)
        shared = tiny_sam.decode(emb, boxes=boxes)
        repeated = tiny_sam.decode(emb.expand(2, -1, -1, -1), boxes=boxes)
    assert shared[0].shape == (2, 1, 16, 16)
    assert torch.allclose(shared[0], repeated[0], atol=1e-6)
    assert torch.allclose(shared[1], repeated[1], atol=1e-6)
    with pytest.raises(ValueError, match="batch"):
        tiny_sam.decode(emb.expand(2, -1, -1, -1), boxes=torch.zeros(3, 4))


def test_automatic_mode_with_five_classes() -> None:
    sam = perturb_(build_sam_vit(**TINY, num_multimask_outputs=5), seed=4).eval()
    assert sam.num_mask_outputs == 5
    assert sam.state_dict()["mask_decoder.mask_tokens.weight"].shape == (6, 256)
    images = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        masks, iou = sam(images, multimask_output=True)
        single, single_iou = sam(images)
        all_masks, all_iou = sam.mask_decoder.predict_masks(
            sam.encode(images), sam.prompt_encoder.get_dense_pe(),
            torch.zeros(2, 0, 256), sam.prompt_encoder.no_mask_embed.weight.reshape(1, -1, 1, 1).expand(2, -1, 4, 4),
        )
    assert masks.shape == (2, 5, 16, 16) and iou.shape == (2, 5)
    assert single.shape == (2, 1, 16, 16) and single_iou.shape == (2, 1)
    # Multimask outputs are tokens 1..5, the single output is token 0.
    assert torch.allclose(masks, all_masks[:, 1:], atol=1e-5)
    assert torch.allclose(single, all_masks[:, :1], atol=1e-5)
    assert (masks[:, 0] - masks[:, 1]).abs().max().item() > 1e-2


def test_vit_b_at_256_px_keeps_official_shapes_and_runs() -> None:
    torch.manual_seed(0)
    sam = build_sam_vit_variant("vit_b", img_size=256).eval()
    state = sam.state_dict()
    assert state["image_encoder.pos_embed"].shape == (1, 64, 64, 768)
    assert state["image_encoder.blocks.2.attn.rel_pos_h"].shape == (127, 64)
    assert state["image_encoder.blocks.0.attn.rel_pos_w"].shape == (27, 64)
    images = torch.randn(1, 3, 256, 256)
    with torch.no_grad():
        emb = sam.encode(images)
        masks, iou = sam.decode(emb, boxes=torch.tensor([[30.0, 40.0, 200.0, 220.0]]))
    assert emb.shape == (1, 256, 16, 16)
    assert torch.isfinite(emb).all() and emb.std().item() > 0.1
    assert masks.shape == (1, 1, 64, 64) and iou.shape == (1, 1)
    with pytest.raises(ValueError, match="256"):
        sam.encode(torch.zeros(1, 3, 1024, 1024))


def test_grad_checkpointing_gives_the_same_gradients() -> None:
    torch.manual_seed(0)
    sam = perturb_(build_sam_vit(**TINY), seed=6).train()
    images = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(7))
    boxes = torch.tensor([[4.0, 6.0, 40.0, 30.0], [10.0, 10.0, 60.0, 62.0]])
    calls = []
    for block in sam.image_encoder.blocks:
        block.register_forward_pre_hook(lambda *args: calls.append(1))

    def grads(checkpointing: bool) -> dict[str, torch.Tensor]:
        sam.zero_grad()
        assert sam.set_grad_checkpointing(checkpointing)
        calls.clear()
        masks, iou = sam(images, boxes=boxes)
        (masks.square().mean() + iou.sum()).backward()
        # Checkpointed blocks start again during backward (recompute may stop early).
        assert len(calls) == (4 if checkpointing else 2)
        # Prompt embeddings that a box prompt does not use get no gradient.
        return {n: p.grad.clone() for n, p in sam.named_parameters() if p.grad is not None}

    plain, checkpointed = grads(False), grads(True)
    assert plain.keys() == checkpointed.keys()
    assert sum(n.startswith("image_encoder.") for n in plain) == len(list(sam.image_encoder.parameters()))
    for name in plain:
        assert torch.allclose(plain[name], checkpointed[name], atol=1e-6, rtol=1e-5), name
    assert plain["image_encoder.blocks.1.attn.rel_pos_h"].abs().max().item() > 0


def test_sam_rejects_unknown_normalization(tiny_sam: Sam) -> None:
    with pytest.raises(ValueError, match="normalization"):
        Sam(tiny_sam.image_encoder, tiny_sam.prompt_encoder, tiny_sam.mask_decoder,
            image_size=64, normalization="zscore")


def test_encoder_input_must_be_patch_multiple() -> None:
    sam = build_sam_vit(**TINY)
    with pytest.raises(ValueError, match="multiple"):
        sam.image_encoder(torch.zeros(1, 3, 60, 64))
