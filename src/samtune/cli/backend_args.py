"""`--backend` and `--precision`, shared by predict, segment and eval --run (issue 16)."""

from __future__ import annotations

import argparse

# The same tuple as samtune.inference.precision.PRECISIONS, here so that building the
# parser (samtune --help, the listings) does not import torch; a test keeps them equal.
PRECISIONS = ("auto", "fp32", "bf16", "int8")


def add_backend_arguments(parser: argparse.ArgumentParser, prefix: str = "") -> None:
    """Add --backend torch|onnxruntime|openvino|auto and --precision auto|fp32|bf16|int8 to a subcommand."""
    parser.add_argument(
        "--backend", default="auto", choices=("auto", "torch", "onnxruntime", "openvino"),
        help=prefix + "inference engine: onnxruntime (needs samtune[onnx]) or openvino (needs samtune[openvino]) "
        "run the model's ONNX graphs, exported once into ~/.cache/samtune or $SAMTUNE_CACHE; torch; or auto: "
        "for a SAM model on the CPU, bf16 where the CPU has native bf16 (on openvino where installed, else "
        "torch), else onnxruntime where installed, else torch",
    )
    parser.add_argument(
        "--precision", default="auto", choices=PRECISIONS,  # kept equal to samtune.inference.precision's
        help=prefix + "bf16 runs only on hardware with native bf16 (AVX512-BF16/AMX CPUs, recent GPUs) and "
        "with --backend torch or openvino; int8 (weights of the encoder's linear layers) with onnxruntime only; "
        "auto: bf16 for a SAM model on a CPU with native bf16 (its labels matched fp32 within 0.005 Dice), "
        "else fp32 (see BENCHMARKS.md)",
    )
