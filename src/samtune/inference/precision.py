"""Inference precision from the hardware: bf16 only where the CPU (or GPU) computes it natively.

On an AVX2-only CPU, bf16 matmuls are emulated and run many times slower than fp32
(BENCHMARKS.md); CPUs with AVX512-BF16 or AMX-BF16 run them about twice as fast. The CPU
flags come from /proc/cpuinfo (Linux); where it cannot be read, bf16 counts as absent.
`--precision auto` picks bf16 on torch or OpenVINO where it is native (`BF16_BY_DEFAULT`: its Dice
change against fp32 on real data is within 0.005 and it was the fastest exact-enough path on
such a CPU, BENCHMARKS.md "CPU inference", fourth round), fp32 everywhere else.
"""

from __future__ import annotations

import functools
import platform
from pathlib import Path

import torch

from samtune.errors import UserError

PRECISIONS = ("auto", "fp32", "bf16", "int8")
BF16_FLAGS = ("avx512_bf16", "amx_bf16")  # /proc/cpuinfo names of native bf16 arithmetic
BF16_BACKENDS = ("torch", "openvino")  # torch autocast; OpenVINO's bf16 inference precision
# Whether `auto` picks bf16 (torch autocast, or OpenVINO's bf16 encoder) where it is native.
# On: measured on a 2-core AMD EPYC with avx512_bf16 (BENCHMARKS.md, fourth and fifth rounds),
# bf16 changed mean Dice on the prostate val slices by +0.0002 on torch (0.9489 -> 0.9491) and
# -0.0007 on OpenVINO (0.9482), left the 189-slice MNI labels identical to fp32 on both, and ran
# MNI at 1.85-1.97 (torch) and 2.40 (OpenVINO) slices/s against 1.19 (torch fp32).
BF16_BY_DEFAULT = True
# Whether `auto` picks int8 (weight-only MatMul quantisation, `samtune.inference.quantize`)
# on onnxruntime. Set from the measurements in BENCHMARKS.md "int8": see the comment there.
INT8_BY_DEFAULT = False


@functools.lru_cache(maxsize=None)
def cpu_flags(cpuinfo: str = "/proc/cpuinfo") -> frozenset[str]:
    """The CPU feature flags of the first processor listed (empty if unreadable)."""
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return frozenset(value.split())
    return frozenset()


def cpu_name(cpuinfo: str = "/proc/cpuinfo") -> str:
    """The CPU model name (for messages and benchmark records)."""
    try:
        for line in Path(cpuinfo).read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def native_bf16(device: torch.device | str = "cpu", flags: frozenset[str] | None = None) -> bool:
    """Whether `device` computes bf16 natively (CPU flags, or a CUDA GPU that supports it)."""
    device = torch.device(device)
    if device.type == "cuda":
        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    flags = cpu_flags() if flags is None else flags
    return any(flag in flags for flag in BF16_FLAGS)


def resolve_precision(requested: str, device: torch.device | str = "cpu", backend: str = "torch",
                      flags: frozenset[str] | None = None) -> str:
    """"fp32", "bf16" or "int8" for a `--precision` value on this hardware and backend.

    bf16 is refused where it is not native and off torch; int8 off onnxruntime.
    """
    if requested not in PRECISIONS:
        raise UserError(f"--precision {requested!r}: choose one of {', '.join(PRECISIONS)}")
    native = native_bf16(device, flags)
    if requested == "auto":
        if backend == "onnxruntime" and INT8_BY_DEFAULT and torch.device(device).type == "cpu":
            return "int8"
        on_cpu = torch.device(device).type == "cpu"  # bf16's speed was measured on CPUs only
        return "bf16" if native and BF16_BY_DEFAULT and backend in BF16_BACKENDS and on_cpu else "fp32"
    if requested == "int8" and backend != "onnxruntime":
        raise UserError("--precision int8 runs with --backend onnxruntime (or auto) only; "
                        "use --precision fp32 with --backend torch")
    if requested == "bf16":
        if backend not in BF16_BACKENDS:
            raise UserError(f"--precision bf16 runs with --backend {' or '.join(BF16_BACKENDS)} only; "
                            f"use --precision fp32 with {backend}")
        if not native:
            where = cpu_name() if torch.device(device).type == "cpu" else str(device)
            raise UserError(
                f"--precision bf16: {where} has no native bf16 (no {' or '.join(BF16_FLAGS)} flag), "
                "where it runs many times slower than fp32; use --precision fp32 or auto"
            )
    return requested
