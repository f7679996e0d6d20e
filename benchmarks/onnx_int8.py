"""Is onnxruntime's dynamic int8 quantisation of the LiteMedSAM encoder worth offering? (issue 16)

Exports LiteMedSAM (real weights), quantises the encoder graph's weights to int8 with
`onnxruntime.quantization.quantize_dynamic` (activations quantised at run time), and on
the five prostate val slices (box prompts from their masks) measures, side by side in one
process: encoder seconds (median over slices, torch fp32 / onnxruntime fp32 / int8) and
the Dice of each path's labels against the ground truth and against fp32.

    python benchmarks/onnx_int8.py [--threads 2]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from prostate_val import prostate_val_slices  # benchmarks/ is the script's folder

from samtune.evaluation.metrics import overlap_metrics


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return overlap_metrics(a, b)[0]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from samtune.inference.backends import OnnxSam, read_manifest
    from samtune.inference.onnx_export import DECODER_FILE, ENCODER_FILE, export_onnx
    from samtune.inference.predictor import Predictor

    torch.set_num_threads(args.threads)
    torch_predictor = Predictor.from_model("lite_medsam")
    folder = Path(tempfile.mkdtemp()) / "export"
    export_onnx(torch_predictor, folder, "lite_medsam")
    manifest = read_manifest(folder)
    quantize_dynamic(str(folder / ENCODER_FILE), str(folder.parent / "encoder_int8.onnx"), weight_type=QuantType.QInt8)
    paths = {
        "torch fp32": torch_predictor,
        "onnxruntime fp32": Predictor.from_onnx(folder, threads=args.threads),
        "onnxruntime int8": Predictor(OnnxSam(folder.parent / "encoder_int8.onnx", folder / DECODER_FILE, manifest,
                                              args.threads), "prompted"),
    }
    seconds = {name: [] for name in paths}
    labels = {name: [] for name in paths}
    truths = []
    for image, truth, box in prostate_val_slices():
        truths.append(truth)
        for name, predictor in paths.items():  # interleaved: machine load hits all paths alike
            with torch.inference_mode():
                start = time.perf_counter()
                embeddings, frames = predictor.encode_images([image])
                seconds[name].append(time.perf_counter() - start)
                labels[name].append((predictor.prompt_logits(embeddings, frames[0], box) > 0).numpy())
    print("| path | encoder s (median) | Dice vs truth (mean) | Dice vs torch fp32 (min) |")
    print("|---|---|---|---|")
    for name in paths:
        truth_dice = statistics.mean(dice(p, t) for p, t in zip(labels[name], truths))
        agreement = min(dice(p, q) for p, q in zip(labels[name], labels["torch fp32"]))
        print(f"| {name} | {statistics.median(seconds[name]):.2f} | {truth_dice:.4f} | {agreement:.4f} |")


if __name__ == "__main__":
    main()
