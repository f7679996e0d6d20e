"""Every registered method x both backbone families x both components.

For each: a fresh method is the identity; one AdamW step changes exactly the intended
parameters (and frozen ones get no gradient); save -> load reproduces the tuned model
exactly; merged LoRA/DoRA (and export to the official layout) equals unmerged.
"""

from __future__ import annotations

import copy

import pytest
import torch

from tests.helpers.tiny_sam import FAMILIES, build, inputs, loss_of, predict
from samtune.errors import UserError
from samtune.methods import (
    COMPONENTS,
    Strategy,
    apply_strategy,
    export_merged,
    list_methods,
    load_tuning,
    merge,
    save_tuning,
    train_mode,
    trainable_parameters,
    unmerge,
)

# Transformer blocks of the tiny test models, spelled out (not derived from samtune.methods.sites).
ENCODER_BLOCKS = {
    "sam_vit": ["image_encoder.blocks.0", "image_encoder.blocks.1"],
    "tiny_vit": [f"image_encoder.layers.{stage}.blocks.0" for stage in (1, 2, 3)],
}
DECODER_BLOCKS = ["mask_decoder.transformer.layers.0", "mask_decoder.transformer.layers.1"]
DECODER_ATTENTIONS = [
    f"{block}.{attn}"
    for block in DECODER_BLOCKS
    for attn in ("self_attn", "cross_attn_token_to_image", "cross_attn_image_to_token")
] + ["mask_decoder.transformer.final_attn_token_to_image"]


def intended_trainable(base: torch.nn.Module, family: str, method: str, component: str) -> set[str]:
    """The parameter names the strategy should train, from the method definitions."""
    with_encoder = component == "encoder+decoder"
    if method == "full":
        parts = ("image_encoder.", "mask_decoder.") if with_encoder else ("mask_decoder.",)
        return {n for n, _ in base.named_parameters() if n.startswith(parts)}
    if method == "adapter":
        blocks = DECODER_BLOCKS + (ENCODER_BLOCKS[family] if with_encoder else [])
        return {
            f"tuning.{b}.{a}.{fc}.{p}"
            for b in blocks
            for a in ("attn_adapter", "mlp_adapter")
            for fc in ("fc1", "fc2")
            for p in ("weight", "bias")
        }
    attentions = DECODER_ATTENTIONS + ([f"{b}.attn" for b in ENCODER_BLOCKS[family]] if with_encoder else [])
    params = ("lora_A", "lora_B") + (("magnitude",) if method == "dora" else ())
    return {f"tuning.{a}.{qv}.{p}" for a in attentions for qv in ("q", "v") for p in params}


CASES = [(m, c) for m in list_methods() for c in COMPONENTS]


@pytest.mark.parametrize("method,component", CASES, ids=[f"{m}-{c}" for m, c in CASES])
def test_identity_step_round_trip_and_merge(family, method, component, tmp_path) -> None:
    base = build(family)
    images, boxes = inputs(base)
    with torch.no_grad():
        ref_masks, ref_iou = predict(base, images, boxes)

    model = apply_strategy(copy.deepcopy(base), Strategy(FAMILIES[family], component, method))
    with torch.no_grad():
        masks, iou = predict(model, images, boxes)
    torch.testing.assert_close(masks, ref_masks, atol=1e-6, rtol=0)
    torch.testing.assert_close(iou, ref_iou, atol=1e-6, rtol=0)

    # One AdamW step: exactly the intended parameters change, frozen ones get no gradient.
    trainable = trainable_parameters(model)
    assert set(trainable) == intended_trainable(base, family, method, component)
    before = {k: v.detach().clone() for k, v in model.state_dict().items()}
    optimizer = torch.optim.AdamW(trainable.values(), lr=1e-2, weight_decay=0.01)
    train_mode(model)
    loss_of(model, images, boxes).backward()
    optimizer.step()
    for name, param in model.named_parameters():
        if name in trainable:
            assert param.grad is not None and torch.isfinite(param.grad).all(), name
        else:
            assert param.grad is None, name
    after = model.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed == set(trainable)  # buffers (BatchNorm statistics) included: none changed

    # A large random update, so that any error in saving or merging shows.
    with torch.no_grad():
        for param in trainable.values():
            param.add_(torch.randn_like(param) * 0.05)
    model.eval()
    with torch.no_grad():
        tuned_masks, tuned_iou = predict(model, images, boxes)
    assert (tuned_masks - ref_masks).abs().max() > 1e-3

    # Save -> load onto a fresh copy of the base reproduces the tuned model exactly.
    save_tuning(model, tmp_path, base_model=FAMILIES[family])
    restored = load_tuning(copy.deepcopy(base), tmp_path).eval()
    assert all(torch.equal(v, restored.state_dict()[k]) for k, v in model.state_dict().items())
    with torch.no_grad():
        masks, iou = predict(restored, images, boxes)
    assert torch.equal(masks, tuned_masks) and torch.equal(iou, tuned_iou)

    if method == "adapter":
        with pytest.raises(UserError, match="cannot be folded"):
            export_merged(model)
        return
    # Merged == unmerged; unmerge restores; the exported official-layout state dict
    # loads strictly into a plain base model and gives the same outputs.
    with torch.no_grad():
        merged_masks, _ = predict(merge(model), images, boxes)
        torch.testing.assert_close(merged_masks, tuned_masks, atol=1e-5, rtol=0)
        unmerged_masks, _ = predict(unmerge(model), images, boxes)
        torch.testing.assert_close(unmerged_masks, tuned_masks, atol=1e-5, rtol=0)
        exported = export_merged(model)
        assert list(exported) == list(base.state_dict())
        plain = copy.deepcopy(base)
        plain.load_state_dict(exported, strict=True)
        plain_masks, _ = predict(plain, images, boxes)
        torch.testing.assert_close(plain_masks, tuned_masks, atol=1e-5, rtol=0)
