"""Dice change of bf16 inference (torch autocast) against fp32 on real data (issue 16).

LiteMedSAM (real weights), the five prostate val slices with box prompts from their masks:
Dice of each precision's labels against the ground truth and of bf16 against fp32. The
bf16 numerics do not depend on whether the CPU has native bf16 (both accumulate in fp32),
so this runs anywhere; its speed is only meaningful on a CPU with avx512_bf16/amx_bf16.

    python benchmarks/bf16_dice.py [--threads 2]
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from PIL import Image

PROSTATE = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "MRI-Prostate"


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2.0 * float((a & b).sum()) / max(float(a.sum() + b.sum()), 1.0)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    from samtune.inference.backends import Bf16Sam
    from samtune.inference.precision import cpu_name, native_bf16
    from samtune.inference.predictor import Predictor

    torch.set_num_threads(args.threads)
    fp32 = Predictor.from_model("lite_medsam")
    paths = {"fp32": fp32, "bf16": replace(fp32, model=Bf16Sam(fp32.model, torch.device("cpu")))}
    seconds, labels, truths = {n: [] for n in paths}, {n: [] for n in paths}, []
    for row in (PROSTATE / "val_5shot.csv").read_text().split():
        image_path, mask_path = row.split(",")
        image = np.asarray(Image.open(PROSTATE.parent / image_path))
        truth = np.asarray(Image.open(PROSTATE.parent / mask_path.lstrip("/"))) > 0
        rows, cols = np.nonzero(truth)
        box = (float(cols.min()), float(rows.min()), float(cols.max()), float(rows.max()))
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
