"""Methods under gradient checkpointing and bf16 autocast (CPU)."""

from __future__ import annotations

import pytest
import torch

from tests.helpers.tiny_sam import FAMILIES, build, inputs, loss_of, predict
from samtune.methods import Strategy, apply_strategy, list_methods, train_mode, trainable_parameters


def grads(family: str, method: str, **overrides) -> dict[str, torch.Tensor]:
    model = build(family, **overrides)
    apply_strategy(model, Strategy(FAMILIES[family], "encoder+decoder", method))
    with torch.no_grad():  # a non-trivial update everywhere, so every path carries gradient
        for param in trainable_parameters(model).values():
            param.add_(torch.randn_like(param) * 0.05)
    train_mode(model)
    images, boxes = inputs(model)
    loss_of(model, images, boxes).backward()
    return {n: p.grad for n, p in trainable_parameters(model).items()}


@pytest.mark.parametrize("method", list_methods())
def test_gradient_checkpointing_gives_the_same_gradients(family: str, method: str) -> None:
    plain = grads(family, method)  # build() seeds, so both runs get the same update
    checkpointed = grads(family, method, grad_checkpointing=True)
    assert plain.keys() == checkpointed.keys()
    for name, grad in plain.items():
        assert checkpointed[name] is not None, name
        torch.testing.assert_close(checkpointed[name], grad, atol=1e-6, rtol=1e-4, msg=name)


@pytest.mark.parametrize("method", list_methods())
def test_bf16_autocast(family: str, method: str) -> None:
    model = build(family)
    apply_strategy(model, Strategy(FAMILIES[family], "encoder+decoder", method))
    images, boxes = inputs(model)
    with torch.no_grad():
        reference, _ = predict(model, images, boxes)
    train_mode(model)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        masks, iou = predict(model, images, boxes)
        loss = masks.float().sigmoid().mean() + iou.float().square().mean()
    loss.backward()
    for name, param in trainable_parameters(model).items():
        assert param.grad is not None and param.grad.dtype == param.dtype, name
        assert torch.isfinite(param.grad).all(), name
    assert (masks.float() - reference).abs().max() < 0.1 * reference.abs().max() + 0.05
