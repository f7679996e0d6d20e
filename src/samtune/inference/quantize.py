"""int8 image encoder for the onnxruntime backend: weight-only dynamic quantisation of MatMuls.

What is quantised, and why (measured on LiteMedSAM, AVX2 CPU, BENCHMARKS.md "int8"):

- only MatMuls whose second input is a weight (the linear layers of the attention and
  MLP blocks): their weights are stored int8 per output channel, their activations are
  quantised to uint8 at run time, one scale per tensor;
- NOT the activation x activation MatMuls of attention (q @ k^T, softmax @ v): both sides
  change per image, and quantising them cost accuracy in the first attempt;
- NOT the convolutions (patch embedding, MBConv stages, neck): quantised as well (static
  QDQ, QLinearConv) the encoder ran slower than with fp32 convolutions and lost 0.03 Dice;
- ``reduce_range``: 7-bit weights, so the AVX2 u8 x s8 kernel (vpmaddubsw, 16-bit
  intermediate sums) cannot saturate on CPUs without VNNI. Without it the labels of
  one prostate slice moved to Dice 0.968 against fp32; with it >= 0.99.

The decoder stays fp32: it is a few percent of the time per slice.
"""

from __future__ import annotations

from pathlib import Path

from samtune.atomic import atomic_path

INT8_ENCODER_FILE = "encoder_int8.onnx"


def weight_matmul_split(model) -> tuple[list[str], list[str]]:
    """(names of MatMuls with a weight input, names of activation x activation MatMuls) of an ONNX model."""
    weights = {init.name for init in model.graph.initializer}
    # Constant nodes also hold weights in graphs exported by torch's tracer.
    weights |= {out for node in model.graph.node if node.op_type == "Constant" for out in node.output}
    with_weight: list[str] = []
    activations: list[str] = []
    for node in model.graph.node:
        if node.op_type == "MatMul":
            (with_weight if any(name in weights for name in node.input) else activations).append(node.name)
    return with_weight, activations


def quantize_encoder(encoder: Path, out: Path) -> Path:
    """Write the int8 version of ``encoder`` (an fp32 encoder.onnx) to ``out``, atomically."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    _, activations = weight_matmul_split(onnx.load(str(encoder)))
    with atomic_path(out) as tmp:
        quantize_dynamic(
            str(encoder), str(tmp), op_types_to_quantize=["MatMul"], nodes_to_exclude=activations,
            per_channel=True, reduce_range=True, weight_type=QuantType.QInt8,
        )
    return out
