"""Dice change of bf16 inference (torch autocast; OpenVINO where installed) against fp32 on real data (issue 16).

LiteMedSAM (real weights), the five prostate val slices with box prompts from their masks:
Dice of each precision's labels against the ground truth and of bf16 against fp32. The
torch bf16 numerics do not depend on whether the CPU has native bf16 (both accumulate in
fp32), so that row runs anywhere; its speed is only meaningful on a CPU with
avx512_bf16/amx_bf16. The OpenVINO bf16 row runs only on such a CPU.

    python benchmarks/bf16_dice.py [--threads 2]
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import replace

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
    from samtune.inference.backends import Bf16Sam, openvino_available
    from samtune.inference.precision import cpu_name, native_bf16
    from samtune.inference.predictor import Predictor

    torch.set_num_threads(args.threads)
    fp32 = Predictor.from_model("lite_medsam")
    paths = {"fp32": fp32, "bf16": replace(fp32, model=Bf16Sam(fp32.model, torch.device("cpu")))}
    if openvino_available() and native_bf16("cpu"):  # OpenVINO's bf16 kernels exist only where native
        paths["openvino bf16"] = fp32.with_backend("openvino", "bf16", "lite_medsam")
    seconds, labels, truths = {n: [] for n in paths}, {n: [] for n in paths}, []
    for image, truth, box in prostate_val_slices():
        truths.append(truth)
        for name, predictor in paths.items():
            start = time.perf_counter()
            labels[name].append(predictor.predict_image(image, box=box).astype(bool))
            seconds[name].append(time.perf_counter() - start)
    print(f"CPU: {cpu_name()}, native bf16: {native_bf16('cpu')}, threads {args.threads}")
    print("| precision | s per slice (median) | Dice vs truth (mean) | Dice vs fp32 (min) |")
    print("|---|---|---|---|")
    for name in paths:
        truth_dice = statistics.mean(dice(p, t) for p, t in zip(labels[name], truths))
        agreement = min(dice(p, q) for p, q in zip(labels[name], labels["fp32"]))
        print(f"| {name} | {statistics.median(seconds[name]):.2f} | {truth_dice:.4f} | {agreement:.4f} |")


if __name__ == "__main__":
    main()
