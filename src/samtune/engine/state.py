"""Training state on disk: atomic checkpoints that make a resumed run bit-identical.

A checkpoint holds the trainable weights, optimiser, scheduler (and gradient scaler)
states, the step counter, the position in the data order and every RNG state (Python,
NumPy, torch CPU and CUDA). It is written to a temporary file and renamed, so a kill
during the write leaves the previous checkpoint intact. It is read back with
``torch.load(..., weights_only=True)``; RNG states are stored as tensors and lists only.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch

from samtune.atomic import atomic_path
from samtune.errors import CheckpointError


def capture_rng() -> dict[str, Any]:
    # legacy=True, the default, gives MT19937's tuple (numpy's stub types the no-argument call as the dict form)
    np_state = cast(tuple[str, np.ndarray, int, int, float], np.random.get_state())
    state = {
        "python": _python_state_to_tensor(random.getstate()),
        "numpy": {
            "keys": torch.from_numpy(np_state[1].astype(np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached_gaussian": float(np_state[4]),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    random.setstate(_python_state_from_tensor(state["python"]))
    numpy_state = state["numpy"]
    np.random.set_state(
        (
            "MT19937",
            numpy_state["keys"].numpy().astype(np.uint32),
            int(numpy_state["pos"]),
            int(numpy_state["has_gauss"]),
            float(numpy_state["cached_gaussian"]),
        )
    )
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _python_state_to_tensor(state: tuple) -> dict[str, Any]:
    version, internal, gauss = state
    return {"version": version, "internal": torch.tensor(internal, dtype=torch.int64), "gauss": gauss}


def _python_state_from_tensor(state: dict[str, Any]) -> tuple:
    return (state["version"], tuple(int(v) for v in state["internal"].tolist()), state["gauss"])


def save_training_state(path: str | Path, state: dict[str, Any]) -> None:
    """Write `state` (plain containers of tensors/numbers/strings) atomically."""
    with atomic_path(Path(path)) as tmp:
        torch.save(state, tmp)


def load_training_state(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no training checkpoint at {path}; was the run started with this directory?")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # corrupt file: say which, never a bare traceback
        raise CheckpointError(f"cannot read training checkpoint {path}: {error}") from None
