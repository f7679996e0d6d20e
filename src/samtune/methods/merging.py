"""Fold LoRA/DoRA updates into the base weights (`merge`), undo it (`unmerge`), and
export a tuned model as a plain state dict in the official key layout (`export_merged`).

Merged and unmerged models give the same outputs up to float rounding (~1e-6). Merging
is for inference and export: a merged branch's hook is silent, so its parameters get no
gradient until `unmerge`.
"""

from __future__ import annotations

from typing import cast

import torch
from torch import Tensor, nn

from samtune.errors import UserError
from samtune.methods.tuning import Delta, base_state_dict, deltas


def _mergeable_deltas(model: nn.Module) -> list[Delta]:
    found = [d for _, d in deltas(model)]
    blocking = sorted({type(d).__name__ for d in found if not d.mergeable})
    if blocking:
        raise UserError(
            f"this model has {', '.join(blocking)} modules, which cannot be folded into the "
            "official weights; keep the base checkpoint plus the saved tuning weights instead"
        )
    return found


def is_merged(model: nn.Module) -> bool:
    return any(d.merged for _, d in deltas(model))


@torch.no_grad()
def merge(model: nn.Module) -> nn.Module:
    """Fold every LoRA/DoRA update into its target weight, in place."""
    for delta in _mergeable_deltas(model):
        if not delta.merged:
            weight = cast(nn.Linear, model.get_submodule(delta.target)).weight  # LoRA targets are Linear
            weight.copy_(delta.fold(weight))
            delta.merged = True
    return model


@torch.no_grad()
def unmerge(model: nn.Module) -> nn.Module:
    """Undo `merge` (in reverse order, so branches sharing a weight unwind correctly)."""
    for delta in reversed(_mergeable_deltas(model)):
        if delta.merged:
            weight = cast(nn.Linear, model.get_submodule(delta.target)).weight  # LoRA targets are Linear
            weight.copy_(delta.unfold(weight))
            delta.merged = False
    return model


@torch.no_grad()
def export_merged(model: nn.Module) -> dict[str, Tensor]:
    """A full state dict in the official key layout with all updates folded in.

    Leaves `model` unchanged. For `full` fine-tuning this is the tuned weights as they
    are; adapters cannot be exported this way (UserError).
    """
    mergeable = _mergeable_deltas(model)
    state = {k: v.detach().clone() for k, v in base_state_dict(model).items()}
    for delta in mergeable:
        if not delta.merged:
            key = f"{delta.target}.weight"
            state[key] = delta.fold(state[key])
    return state
