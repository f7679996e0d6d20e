"""Reading checkpoints safely and loading them into our modules.

Accepted files:

* plain state dicts as published (SAM ``sam_vit_*.pth``, MobileSAM ``mobile_sam.pt``,
  LiteMedSAM ``lite_medsam.pth``);
* training checkpoints that wrap the weights (``{"model": ...}``, ``{"state_dict": ...}``,
  as MedSAM's) and/or prefix every key with ``module.`` (DataParallel / DDP);
* ``.safetensors`` files.

Pickles are read with ``torch.load(..., weights_only=True)``, which refuses arbitrary code.
Everything that does not match the model's keys and shapes fails with one message listing
the missing, unexpected and mis-shaped keys.
"""

from __future__ import annotations

import pickle
import re
import warnings
import zipfile
from pathlib import Path

import torch
from torch import nn

from samtune.errors import CheckpointError

_WRAPPER_KEYS = ("model", "state_dict", "model_state_dict", "module")
_PREFIXES = ("module.", "_orig_mod.")  # DDP / DataParallel, torch.compile
_LIST_LIMIT = 6

# Keys whose leading dimension is the number of mask tokens (multimask outputs + 1).
_TOKEN_KEYS = ("mask_decoder.mask_tokens.weight",)
_HYPERNET_PREFIX = "mask_decoder.output_hypernetworks_mlps."


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a checkpoint file into a flat ``{key: tensor}`` dict on the CPU."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}; pass the path of an existing weights file")
    if path.suffix == ".safetensors":
        from samtune.models.safetensors_check import read_checked

        try:
            return unwrap_state_dict(read_checked(path), source=str(path))  # read_checked refuses NaN/inf
        except ValueError as error:
            raise CheckpointError(f"cannot read safetensors checkpoint {path}: {error}") from None
    try:
        with warnings.catch_warnings():  # torch warns about pickle protocols; we report the outcome
            warnings.simplefilter("ignore")
            raw = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        found = _unsafe_globals(path) or _globals_in_message(str(error))
        if found:
            raise CheckpointError(
                f"refusing to load {path}: the file holds Python objects, not only tensors ({found[0]}), and "
                "was refused for safety (loading it could run code); re-save it as a plain state dict or as "
                ".safetensors"
            ) from None
        raise CheckpointError(
            f"cannot read checkpoint {path}: file is corrupt or not a PyTorch checkpoint"
        ) from None
    except Exception as error:  # torch's unpickler fails on arbitrary bytes with many error types
        raise CheckpointError(
            f"cannot read checkpoint {path}: file is corrupt or not a PyTorch checkpoint "
            f"({type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''})"
        ) from None
    state = unwrap_state_dict(raw, source=str(path))
    check_finite(state, str(path))
    return state


def check_finite(state: dict[str, torch.Tensor], source: str) -> None:
    """CheckpointError naming the first floating tensor holding NaN or infinity."""
    for key, tensor in state.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            kind = "NaN" if bool(torch.isnan(tensor).any()) else "infinite"
            raise CheckpointError(
                f"{source}: tensor '{key}' holds {kind} values; the file is damaged or its training diverged, "
                "use another checkpoint"
            )


# Modules whose globals a weights file legitimately references (tensor rebuilding, dicts).
_SAFE_MODULES = ("torch", "collections", "builtins", "_codecs", "numpy")


def _globals_in_message(text: str) -> list[str]:
    """The global torch's weights-only unpickler refused, read from its message."""
    match = re.search(r"(?:unsupported global|not an allowed global)[^\w]*(?:GLOBAL\s+)?([\w.]+)", text, re.IGNORECASE)
    return [match.group(1)] if match else []


def _unsafe_globals(path: Path) -> list[str]:
    """Importable names (module.name) a pickle references outside `_SAFE_MODULES`.

    Looks at the pickle stream itself (the file, or data.pkl inside a torch zip) without
    executing it, so a refusal names what the payload would have called.
    """
    import pickletools

    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                name = next((n for n in archive.namelist() if n.endswith("data.pkl")), None)
                payload = archive.read(name) if name else b""
        else:
            payload = path.read_bytes()
        strings: list[str] = []
        found: list[str] = []
        for opcode, arg, _ in pickletools.genops(payload):
            if isinstance(arg, str):
                strings.append(arg)
            if opcode.name in ("GLOBAL", "INST"):
                found.append(str(arg).replace(" ", "."))
            elif opcode.name == "STACK_GLOBAL" and len(strings) >= 2:
                found.append(f"{strings[-2]}.{strings[-1]}")
    except Exception:  # not a pickle at all: the caller reports a corrupt file
        return []
    return [name for name in found if name.split(".")[0] not in _SAFE_MODULES]




def unwrap_state_dict(raw: object, source: str = "checkpoint") -> dict[str, torch.Tensor]:
    """Strip training wrappers (``{"model": ...}``) and ``module.`` key prefixes."""
    state = raw
    for _ in range(3):  # wrappers nest at most a couple of levels in practice
        if isinstance(state, dict) and not _is_tensor_dict(state):
            inner = next((state[k] for k in _WRAPPER_KEYS if isinstance(state.get(k), dict)), None)
            if inner is None:
                break
            state = inner
    if not isinstance(state, dict) or not _is_tensor_dict(state):
        found = sorted(state)[:_LIST_LIMIT] if isinstance(state, dict) else type(state).__name__
        raise CheckpointError(
            f"{source} does not contain a state dict of tensors (found {found}); "
            "expected a SAM-family weights file"
        )
    cleaned: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        for prefix in _PREFIXES:
            while key.startswith(prefix):
                key = key[len(prefix):]
        cleaned[key] = value
    return cleaned


def _is_tensor_dict(d: dict) -> bool:
    return bool(d) and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in d.items())


def _num_mask_tokens(state: dict[str, torch.Tensor]) -> int | None:
    tokens = state.get(_TOKEN_KEYS[0])
    return None if tokens is None else int(tokens.shape[0])


def adapt_mask_heads(
    state: dict[str, torch.Tensor], target: dict[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """Map a checkpoint's mask heads onto a decoder with a different number of mask tokens.

    Automatic multi-class segmentation sets the number of multimask outputs to the number
    of classes. Token ``i`` of the new decoder is initialised from pretrained token
    ``i mod n`` (and likewise its hypernetwork MLP and IoU-head row), so every output head
    starts from pretrained weights; these heads are always trained (see methods).
    """
    n_ckpt, n_model = _num_mask_tokens(state), _num_mask_tokens(target)
    if n_ckpt is None or n_model is None or n_ckpt == n_model:
        return state
    out = {k: v for k, v in state.items() if not k.startswith(_HYPERNET_PREFIX)}
    out[_TOKEN_KEYS[0]] = state[_TOKEN_KEYS[0]][[i % n_ckpt for i in range(n_model)]].clone()
    for key in target:
        if key.startswith(_HYPERNET_PREFIX):
            index, rest = key[len(_HYPERNET_PREFIX):].split(".", 1)
            source_key = f"{_HYPERNET_PREFIX}{int(index) % n_ckpt}.{rest}"
            if source_key in state:
                out[key] = state[source_key].clone()
    iou_keys = sorted(k for k in target if k.startswith("mask_decoder.iou_prediction_head.layers."))
    if iou_keys:
        last_layer = iou_keys[-1].rsplit(".", 1)[0]  # rows of the final layer are per token
        for suffix in ("weight", "bias"):
            key = f"{last_layer}.{suffix}"
            if key in state and state[key].shape[0] == n_ckpt:
                out[key] = state[key][[i % n_ckpt for i in range(n_model)]].clone()
    return out


def describe_mismatch(model_state: dict[str, torch.Tensor], state: dict[str, torch.Tensor]) -> str:
    """Human-readable summary of missing / unexpected / mis-shaped keys ('' if none)."""
    missing = [k for k in model_state if k not in state]
    unexpected = [k for k in state if k not in model_state]
    misshaped = [
        f"{k} {tuple(state[k].shape)} vs model {tuple(model_state[k].shape)}"
        for k in model_state
        if k in state and state[k].shape != model_state[k].shape
    ]
    parts = []
    for label, items in (("missing", missing), ("unexpected", unexpected), ("mis-shaped", misshaped)):
        if items:
            shown = ", ".join(items[:_LIST_LIMIT]) + (f", ... (+{len(items) - _LIST_LIMIT})" if len(items) > _LIST_LIMIT else "")
            parts.append(f"{len(items)} {label} keys: {shown}")
    return "; ".join(parts)


def guess_architecture(state: dict[str, torch.Tensor]) -> str | None:
    """Name the SAM-family architecture a state dict most likely belongs to."""
    if "image_encoder.pos_embed" in state:
        dim = int(state["image_encoder.pos_embed"].shape[-1])
        return {768: "sam_vit_b / medsam_vit_b", 1024: "sam_vit_l", 1280: "sam_vit_h"}.get(dim, f"a SAM ViT with width {dim}")
    key = "image_encoder.patch_embed.seq.0.c.weight"
    if key in state:
        return "mobile_sam" if state[key].shape[-1] == 3 else "lite_medsam"
    return None


def load_weights(model: nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """Load ``state`` into ``model`` strictly, adapting mask heads to the number of outputs."""
    model_state = model.state_dict()
    state = adapt_mask_heads(state, model_state)
    problem = describe_mismatch(model_state, state)
    if problem:
        guess = guess_architecture(state)
        hint = f"; the file looks like {guess} weights" if guess else ""
        raise CheckpointError(
            f"checkpoint {source} does not match the model ({problem}){hint}; "
            "choose the matching --model or the right weights file"
        )
    model.load_state_dict(state, strict=True)
