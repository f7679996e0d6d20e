"""Where methods act: LoRA on q and v channels only (per fused-qkv layout), block selection,
adapter initialisation, output heads when the number of classes changes, eval handling."""

from __future__ import annotations

import copy

import pytest
import torch
from tests.helpers.tiny_sam import FAMILIES, build, inputs, loss_of, predict
import samtune
from samtune.errors import ConfigError
from samtune.methods import MethodOptions, Strategy, apply_strategy, train_mode, trainable_parameters


def qkv_parts(attn: torch.nn.Module, family: str) -> dict[str, torch.Tensor]:
    """q/k/v output channels of the fused qkv as each model's own code defines them."""
    if family == "tiny_vit":  # per head [q_h | k_h | v_h], as TinyViT's WindowAttention.forward splits it
        per_head = torch.arange(attn.qkv.out_features).view(attn.num_heads, -1)
        q, k, v = per_head.split([attn.key_dim, attn.key_dim, attn.d], dim=-1)
        return {"q": q.flatten(), "k": k.flatten(), "v": v.flatten()}
    dim = attn.qkv.in_features
    return {p: torch.arange(i * dim, (i + 1) * dim) for i, p in enumerate("qkv")}


def capture_outputs(modules: dict[str, torch.nn.Module], run) -> dict[str, torch.Tensor]:
    """The first output of each module during one call of `run`."""
    seen: dict[str, torch.Tensor] = {}

    def keep(name):
        return lambda m, a, out: seen.setdefault(name, out.detach().clone())

    handles = [module.register_forward_hook(keep(name)) for name, module in modules.items()]
    try:
        with torch.no_grad():
            run()
    finally:
        for handle in handles:
            handle.remove()
    return seen


def capture_output(module: torch.nn.Module, run) -> torch.Tensor:
    return capture_outputs({"out": module}, run)["out"]


@pytest.mark.parametrize("part", ["q", "v"])
def test_lora_changes_only_its_channels_of_the_fused_qkv(family: str, part: str) -> None:
    model = apply_strategy(build(family), Strategy(FAMILIES[family], "encoder+decoder", "lora"))
    images, boxes = inputs(model)
    block = dict(model.image_encoder.named_modules())[
        "blocks.0" if family == "sam_vit" else "layers.1.blocks.0"
    ]
    run = lambda: predict(model, images, boxes)  # noqa: E731
    before = capture_output(block.attn.qkv, run)
    branch = dict(model.tuning.named_modules())[
        f"image_encoder.{'blocks.0' if family == 'sam_vit' else 'layers.1.blocks.0'}.attn.{part}"
    ]
    with torch.no_grad():
        branch.lora_B.normal_()
    after = capture_output(block.attn.qkv, run)
    channels = qkv_parts(block.attn, family)
    changed = (after - before).abs().amax(dim=tuple(range(after.ndim - 1)))
    assert (changed[channels[part]] > 1e-4).all()
    for other in set("qkv") - {part}:
        assert torch.equal(changed[channels[other]], torch.zeros_like(changed[channels[other]])), other


def test_decoder_lora_changes_q_and_v_projections_only(family: str) -> None:
    model = apply_strategy(build(family), Strategy(FAMILIES[family], "decoder", "lora"))
    images, boxes = inputs(model)
    path = "mask_decoder.transformer.layers.0.cross_attn_token_to_image"
    attn = model.get_submodule(path)
    branches = dict(model.tuning.named_modules())
    run = lambda: predict(model, images, boxes)  # noqa: E731
    outputs = lambda: capture_outputs({p: getattr(attn, f"{p}_proj") for p in "qkv"}, run)  # noqa: E731
    for part in "qv":  # q and k read the token stream, v the image stream
        before = outputs()
        with torch.no_grad():
            branches[f"{path}.{part}"].lora_B.normal_()
        after = outputs()
        for p in "qkv":
            assert torch.equal(after[p], before[p]) is (p != part), (part, p)


def test_block_selection(family: str) -> None:
    name = FAMILIES[family]
    model = apply_strategy(build(family), Strategy(name, "encoder+decoder", "lora", MethodOptions(blocks=(-1,))))
    encoder_keys = {k for k in trainable_parameters(model) if k.startswith("tuning.image_encoder")}
    last = "blocks.1" if family == "sam_vit" else "layers.3.blocks.0"
    assert encoder_keys == {f"tuning.image_encoder.{last}.attn.{p}.lora_{m}" for p in "qv" for m in "AB"}
    with pytest.raises(ConfigError, match="block 7 does not exist"):
        apply_strategy(build(family), Strategy(name, "encoder+decoder", "adapter", MethodOptions(blocks=(0, 7))))


def test_adapter_study_init_is_not_identity_zero_init_is(family: str) -> None:
    base = build(family)
    images, boxes = inputs(base)
    with torch.no_grad():
        ref, _ = predict(base, images, boxes)
        for init, same in (("zero", True), ("study", False)):
            strategy = Strategy(FAMILIES[family], "encoder+decoder", "adapter", MethodOptions(adapter_init=init))
            out, _ = predict(apply_strategy(copy.deepcopy(base), strategy), images, boxes)
            assert torch.allclose(out, ref, atol=1e-6) is same, init


@pytest.mark.parametrize("method", ["adapter", "lora"])
def test_output_heads_train_when_the_number_of_classes_changes(method: str) -> None:
    model = build("sam_vit", num_multimask_outputs=5)
    apply_strategy(model, Strategy("sam_vit_test", "decoder", method), num_classes_changed=True)
    names = set(trainable_parameters(model))
    for head in ("mask_tokens", "output_hypernetworks_mlps", "iou_prediction_head"):
        assert any(n.startswith(f"mask_decoder.{head}.") for n in names), head
    assert not any(n.startswith("mask_decoder.iou_token") for n in names)
    assert not any(n.startswith("mask_decoder.transformer.") for n in names)
    untouched = apply_strategy(build("sam_vit"), Strategy("sam_vit_test", "decoder", method))
    assert all(n.startswith("tuning.") for n in trainable_parameters(untouched))


def test_frozen_parts_and_batchnorm_stay_in_eval() -> None:
    model = apply_strategy(build("tiny_vit"), Strategy("tiny_vit_test", "encoder+decoder", "full"))
    batchnorms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert batchnorms and all(p.requires_grad for m in batchnorms for p in m.parameters())
    stats = {k: v.clone() for k, v in model.state_dict().items() if "running_" in k}
    images, boxes = inputs(model, batch=2)
    model.train()  # plain train(), not train_mode: the pre-hooks still keep BN in eval
    loss_of(model, images, boxes).backward()
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in stats.items())
    assert not any(m.training for m in batchnorms)
    assert model.mask_decoder.training and model.image_encoder.training

    decoder_only = apply_strategy(build("tiny_vit"), Strategy("tiny_vit_test", "decoder", "lora"))
    train_mode(decoder_only)
    assert not decoder_only.image_encoder.training and not decoder_only.prompt_encoder.training
    assert decoder_only.mask_decoder.training and decoder_only.tuning.training


def test_strategy_applies_once() -> None:
    model = apply_strategy(build("sam_vit"), Strategy("sam_vit_test", "decoder", "lora"))
    with pytest.raises(Exception, match="already has strategy"):
        apply_strategy(model, Strategy("sam_vit_test", "decoder", "lora"))


def test_a_deep_copy_of_a_tuned_model_is_independent() -> None:
    model = apply_strategy(build("sam_vit"), Strategy("sam_vit_test", "encoder+decoder", "dora"))
    images, boxes = inputs(model)
    twin = copy.deepcopy(model)  # e.g. an EMA copy: hooks must follow the copied branches
    with torch.no_grad():
        for param in trainable_parameters(twin).values():
            param.add_(torch.randn_like(param) * 0.05)
        twin_out = predict(twin, images, boxes)[0]
        assert not torch.allclose(twin_out, predict(model, images, boxes)[0])
        for param in trainable_parameters(model).values():
            param.add_(torch.randn_like(param) * 0.05)
        assert torch.equal(predict(twin, images, boxes)[0], twin_out)


def test_strategy_must_name_the_models_backbone() -> None:
    with pytest.raises(Exception, match="is for backbone 'lite_medsam'"):
        apply_strategy(build("sam_vit"), Strategy("lite_medsam", "decoder", "lora"))


def test_full_leaves_parameters_the_model_marks_unused_frozen() -> None:
    # MobileSAM's checkpoint carries TinyViT's ImageNet head, unused by SAM and frozen by
    # the model; `full` must not wake it up (DDP would wait forever for its gradients).
    model = samtune.create_model("mobile_sam", device="meta")
    head = {n for n, _ in model.named_parameters() if n.startswith(("image_encoder.head.", "image_encoder.norm_head."))}
    assert head == {"image_encoder.norm_head.weight", "image_encoder.norm_head.bias",
                    "image_encoder.head.weight", "image_encoder.head.bias"}
    apply_strategy(model, Strategy("mobile_sam", "encoder+decoder", "full"))
    trainable = set(trainable_parameters(model))
    assert not head & trainable
    tuned = {n for n, _ in model.named_parameters() if n.startswith(("image_encoder.", "mask_decoder."))}
    assert tuned - head == trainable
