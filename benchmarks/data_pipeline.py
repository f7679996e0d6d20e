"""Samples per second through the full data pipeline (issue 4).

Read, slice, label mapping, normalise, augment, resize + pad, prompts, for:

- the MRI-Prostate 5-shot PNG slices (`../shared/data/MRI-Prostate`, both lists), and
- the MNI152 T1 volume with its white-matter map thresholded at 0.5 (one NIfTI volume,
  197x233x189, sliced along z).

"cold" includes reading and decoding the files (dataset construction + one pass);
"warm" is a further epoch with the cases cached (what every later epoch costs).
Single process, no DataLoader workers.

    python benchmarks/data_pipeline.py [--sizes 256 1024] [--epochs 2] [--threads 1]
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import torch

from samtune.assets import mni_template
from samtune.data.augment import AugmentConfig
from samtune.data.dataset import SliceDataset, SliceDatasetConfig
from samtune.data.labels import LabelMap
from samtune.data.prompts import PromptConfig
from samtune.data.sources import Case, load_source

PROSTATE = Path(__file__).resolve().parents[1].parent / "shared/data/MRI-Prostate"


def _sources():
    cases = []
    for name in ("train_5shot.csv", "val_5shot.csv"):
        cases.extend(load_source(PROSTATE / name).cases)
    prostate = (cases, LabelMap.from_values({"central": 254, "peripheral": 255}), 0)
    mni = ([Case("mni152", (mni_template("t1"),), mni_template("wm"), "mni152")], LabelMap.binary(threshold=128), 0)
    return {"prostate PNG (10 slices)": prostate, "MNI152 NIfTI (189 z-slices)": mni}


def _run(cases, labels, axis, size, epochs):
    normalization = "minmax" if size == 256 else "imagenet"
    config = SliceDatasetConfig(
        image_size=size, normalization=normalization, axis=axis, empty_slices="keep",
        augment=AugmentConfig(), prompts=PromptConfig.study("hybrid"), seed=0,
    )
    start = time.perf_counter()
    dataset = SliceDataset(cases, config, labels=labels, train=True)
    for index in range(len(dataset)):
        dataset[index]
    cold = len(dataset) / (time.perf_counter() - start)
    warm_rates = []
    for epoch in range(1, epochs + 1):
        dataset.set_epoch(epoch)
        start = time.perf_counter()
        for index in range(len(dataset)):
            dataset[index]
        warm_rates.append(len(dataset) / (time.perf_counter() - start))
    return len(dataset), cold, max(warm_rates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 1024])
    parser.add_argument("--epochs", type=int, default=2, help="warm epochs (best is reported)")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"# {platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"{args.threads} thread(s), augment=default, prompts=study hybrid (3 regions, 5 points, box +10%)")
    print("| source | S (normalisation) | samples | cold samples/s | warm samples/s |")
    print("|---|---|---|---|---|")
    for name, (cases, labels, axis) in _sources().items():
        for size in args.sizes:
            count, cold, warm = _run(cases, labels, axis, size, args.epochs)
            norm = "minmax" if size == 256 else "imagenet"
            print(f"| {name} | {size} ({norm}) | {count} | {cold:.1f} | {warm:.1f} |", flush=True)


if __name__ == "__main__":
    main()
