"""Saving and loading what a strategy tuned, apart from the base weights.

A tuning directory holds two files:

``tuning.safetensors``
    Every trainable parameter (and any persistent buffer of injected modules), keyed
    by the tuned model's state-dict names (official names for base parameters, ``tuning.*``
    for injected ones). Frozen base weights are not repeated: LoRA on LiteMedSAM's
    encoder and decoder is ~0.2 MB.
``tuning.json``
    The strategy, whether the output heads were resized, and the base model: its
    registered name, the checkpoint it was loaded from, that file's sha256 and the
    builder overrides (e.g. ``num_multimask_outputs``) needed to rebuild it.

`load_tuned_model(dir)` rebuilds the base, applies the strategy and loads the tensors:
the result equals the tuned model exactly.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from torch import Tensor, nn

from samtune.atomic import atomic_path
from samtune.errors import CheckpointError, UserError
from samtune.methods.merging import is_merged
from samtune.methods.tuning import TUNING_ATTR, TUNING_PREFIX
from samtune.methods.strategy import (
    Strategy,
    apply_strategy,
    get_strategy,
    has_new_heads,
    parameter_count,
)

WEIGHTS_FILE = "tuning.safetensors"
RECORD_FILE = "tuning.json"
FORMAT = "samtune.tuning"
FORMAT_VERSION = 1
_SHA_ATTR = "_samtune_base_sha256"


@dataclass
class BaseModel:
    """How to rebuild the base: ``samtune.create_model(model, checkpoint, **overrides)``."""

    model: str | None = None
    checkpoint: str | None = None
    sha256: str | None = None
    overrides: dict[str, Any] = field(default_factory=dict)


@dataclass
class TuningRecord:
    strategy: Strategy
    base: BaseModel
    num_classes_changed: bool = False
    trainable_parameters: int = 0
    total_parameters: int = 0
    tensors: int = 0
    samtune_version: str = ""
    format: str = FORMAT
    format_version: int = FORMAT_VERSION

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["strategy"] = self.strategy.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str) -> TuningRecord:
        if data.get("format") != FORMAT:
            raise CheckpointError(f"{source} is not a samtune tuning record (format {data.get('format')!r})")
        if data.get("format_version", 0) > FORMAT_VERSION:
            raise CheckpointError(
                f"{source} has format version {data['format_version']}; this samtune reads up to "
                f"{FORMAT_VERSION}: upgrade samtune"
            )
        data = dict(data)
        data["strategy"] = Strategy.from_dict(data["strategy"])
        data["base"] = BaseModel(**data.get("base", {}))
        return cls(**data)


def tuned_state_dict(model: nn.Module) -> dict[str, Tensor]:
    """What a strategy changes: every trainable parameter, plus any persistent buffer of
    the injected modules, under the model's state-dict names.

    Base buffers never change: BatchNorm layers are kept in eval mode (`apply_strategy`).
    """
    state: dict[str, Tensor] = {name: p for name, p in model.named_parameters() if p.requires_grad}
    container = getattr(model, TUNING_ATTR, None)
    if container is not None:
        state.update(container.state_dict(prefix=TUNING_PREFIX, keep_vars=True))
    return state


def _base_sha256(model: nn.Module, checkpoint: str | None) -> str | None:
    cached = getattr(model, _SHA_ATTR, None)
    if cached is not None and cached[0] == checkpoint:
        return cached[1]
    if checkpoint is None or not Path(checkpoint).is_file():
        return None
    from samtune.assets import sha256_of

    digest = sha256_of(Path(checkpoint))
    setattr(model, _SHA_ATTR, (checkpoint, digest))
    return digest


def save_tuning(
    model: nn.Module,
    directory: str | Path,
    *,
    base_model: str | None = None,
    base_checkpoint: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
) -> Path:
    """Write ``tuning.safetensors`` and ``tuning.json`` into `directory`; return it.

    `base_model`, `base_checkpoint` and `overrides` (builder arguments such as
    ``image_size``) default to what `samtune.create_model` recorded on the model
    (``model.spec.name``, ``model.checkpoint_path``, ``model.build_overrides``). The
    checkpoint's sha256 is computed once per model and cached.
    """
    from safetensors.torch import save_file

    from samtune import __version__

    strategy = get_strategy(model)
    if strategy is None:
        raise UserError("the model has no strategy applied; call apply_strategy before save_tuning")
    if is_merged(model):
        raise UserError("the model is merged; call unmerge(model) before saving its tuning weights")
    spec = getattr(model, "spec", None)
    base_model = base_model or getattr(spec, "name", None)
    checkpoint = base_checkpoint if base_checkpoint is not None else getattr(model, "checkpoint_path", None)
    checkpoint = str(checkpoint) if checkpoint is not None else None
    if overrides is None:
        overrides = getattr(model, "build_overrides", None) or {}
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in tuned_state_dict(model).items()}
    trainable, total = parameter_count(model)
    record = TuningRecord(
        strategy=strategy,
        base=BaseModel(base_model, checkpoint, _base_sha256(model, checkpoint), dict(overrides)),
        num_classes_changed=has_new_heads(model),
        trainable_parameters=trainable,
        total_parameters=total,
        tensors=len(tensors),
        samtune_version=__version__,
    )
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    with atomic_path(directory / WEIGHTS_FILE) as tmp:
        save_file(tensors, str(tmp), metadata={"format": FORMAT, "strategy": strategy.name})
    with atomic_path(directory / RECORD_FILE) as tmp:
        tmp.write_text(json.dumps(record.to_dict(), indent=2) + "\n")
    return directory


def read_record(directory: str | Path) -> TuningRecord:
    path = Path(directory) / RECORD_FILE
    if not path.is_file():
        raise CheckpointError(f"{directory} holds no {RECORD_FILE}; pass a directory written by save_tuning")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise CheckpointError(f"{path} is not valid JSON: {error}") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{path} is not a samtune tuning record (not a JSON object)")
    try:
        return TuningRecord.from_dict(data, str(path))
    except CheckpointError:
        raise
    except UserError as error:
        raise CheckpointError(f"{path}: {error}") from None
    except (TypeError, KeyError, AttributeError) as error:
        raise CheckpointError(f"{path} is not a valid samtune tuning record ({type(error).__name__}: {error})") from None


def read_tuning_tensors(directory: str | Path) -> dict[str, Tensor]:
    """The tensors of ``tuning.safetensors``; CheckpointError naming the file and what is wrong
    (missing, not a safetensors file, truncated, NaN/inf in a tensor)."""
    from samtune.models.safetensors_check import read_checked

    path = Path(directory) / WEIGHTS_FILE
    if not path.is_file():
        raise CheckpointError(f"{path}: missing; pass a directory written by save_tuning")
    try:
        return read_checked(path)
    except ValueError as error:
        raise CheckpointError(f"{path}: {error}") from None


def load_tuning(
    model: nn.Module, directory: str | Path, record: TuningRecord | None = None,
    saved: dict[str, Tensor] | None = None,
) -> nn.Module:
    """Load saved tuning weights onto `model` (a base model, or one with the same strategy).

    An untouched base gets the recorded strategy applied first. The saved tensors must
    match the tuned model's exactly (names and shapes), else CheckpointError. `record` and
    `saved` (the tensors) skip reading files a caller has already read and checked.
    """
    record = record if record is not None else read_record(directory)
    current = get_strategy(model)
    if current is None:
        apply_strategy(model, record.strategy, num_classes_changed=record.num_classes_changed)
    elif current != record.strategy:
        raise CheckpointError(
            f"{directory} holds strategy {record.strategy.name}, the model has {current.name} applied"
        )
    expected = tuned_state_dict(model)
    if saved is None:
        saved = read_tuning_tensors(directory)
    missing, unexpected = sorted(set(expected) - set(saved)), sorted(set(saved) - set(expected))
    shapes = sorted(k for k in set(saved) & set(expected) if saved[k].shape != expected[k].shape)
    if missing or unexpected or shapes:
        raise CheckpointError(
            f"{directory}/{WEIGHTS_FILE} does not fit this model: missing {missing[:4]}, "
            f"unexpected {unexpected[:4]}, wrong shape {shapes[:4]}; was it saved from "
            f"base '{record.base.model}' with these overrides {record.base.overrides}?"
        )
    for key, tensor in saved.items():
        target = expected[key]
        target.data.copy_(tensor.to(target.device, target.dtype))
    return model


def load_tuned_model(directory: str | Path, checkpoint: str | Path | None = None) -> nn.Module:
    """Rebuild the base model recorded in `directory`, apply the strategy, load the weights.

    `checkpoint` replaces the recorded base checkpoint path (e.g. on another machine);
    its sha256 must match the recorded one.
    """
    import samtune
    from samtune.assets import sha256_of

    record = read_record(directory)
    base = record.base
    if base.model is None:
        raise CheckpointError(f"{directory}/{RECORD_FILE} does not name its base model")
    path = Path(checkpoint) if checkpoint is not None else (Path(base.checkpoint) if base.checkpoint else None)
    if path is not None and not path.is_file():
        raise CheckpointError(
            f"base checkpoint {path} for '{base.model}' not found; pass its location with --checkpoint"
        )
    if path is not None and base.sha256:
        found = sha256_of(path)
        if found != base.sha256:
            raise CheckpointError(
                f"{path} has sha256 {found[:12]}..., but {directory} was tuned from a checkpoint "
                f"with sha256 {base.sha256[:12]}...; pass the original base checkpoint"
            )
    if path is None:
        raise CheckpointError(
            f"{directory} was tuned from a base '{base.model}' without a recorded checkpoint "
            "(random weights?), which cannot be rebuilt; pass the base checkpoint with --checkpoint"
        )
    model = samtune.create_model(base.model, checkpoint=path, **base.overrides)
    return load_tuning(model, directory)
