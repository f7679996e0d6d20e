"""Checking a safetensors file before loading it, so damage is named in one line.

The format: 8 bytes little-endian header length N, N bytes of JSON header ({name: {dtype,
shape, data_offsets: [begin, end]}, "__metadata__": {...}}), then the tensor bytes, with
offsets relative to the end of the header.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import torch

# Headers are a few kB per hundred tensors; safetensors itself refuses above 100 MB.
_MAX_HEADER = 100_000_000


def safetensors_problem(path: Path) -> str | None:
    """What is wrong with the file at `path` as a safetensors file, or None."""
    size = path.stat().st_size
    if size < 8:
        return f"not a safetensors file (only {size} bytes)"
    with open(path, "rb") as handle:
        (length,) = struct.unpack("<Q", handle.read(8))
        if length > _MAX_HEADER or length > size - 8:
            return "not a safetensors file (header too large)"
        raw = handle.read(length)
    try:
        header = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return "not a safetensors file (its header is not JSON)"
    if not isinstance(header, dict):
        return "not a safetensors file (its header is not a JSON object)"
    payload = size - 8 - length
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        offsets = entry.get("data_offsets") if isinstance(entry, dict) else None
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(isinstance(o, int) for o in offsets)):
            return f"not a safetensors file (tensor '{name}' has no valid data_offsets)"
        if offsets[1] > payload:
            return f"truncated (tensor '{name}' ends at byte {offsets[1]} of a {payload}-byte payload)"
    return None


def read_checked(path: Path) -> dict[str, torch.Tensor]:
    """Tensors of a safetensors file; ValueError with a one-line reason when damaged or non-finite."""
    from safetensors.torch import load_file

    problem = safetensors_problem(path)
    if problem:
        raise ValueError(problem)
    try:
        tensors = load_file(str(path), device="cpu")
    except Exception as error:  # safetensors' own error types differ between versions
        raise ValueError(f"not a readable safetensors file ({str(error).splitlines()[0]})") from None
    for name, tensor in tensors.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            kind = "NaN" if bool(torch.isnan(tensor).any()) else "infinite"
            raise ValueError(f"tensor '{name}' holds {kind} values (training diverged or the file is damaged)")
    return tensors
