"""Decoder-only epoch on lite_medsam with and without the embedding cache (issue 5).

An "epoch" is one pass over the 5 prostate training slices, prompted with boxes, batch 1,
2 threads. The cached run computes each embedding once in the first epoch, so we report
the median epoch time over epochs 2..N (the steady state a training run lives in) and
the first epoch separately.

    python benchmarks/embedding_cache.py [--epochs 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch

from samtune.engine.api import train
from samtune.engine.config import TrainConfig

PROSTATE = Path(__file__).resolve().parents[2] / "shared" / "data" / "MRI-Prostate"


def epoch_times(cache: str, epochs: int, out: Path) -> list[float]:
    config = TrainConfig()
    config.model.name = "lite_medsam"
    config.strategy.component, config.strategy.method = "decoder", "full"
    config.data.train = str(PROSTATE / "train_5shot.csv")
    config.task.mode = "prompted"
    config.optim.steps = 5 * epochs
    config.run.cache_embeddings, config.run.log_every, config.run.threads = cache, 5, 2
    config.run.checkpoint_every = 10_000
    train(config, out / cache, overwrite=True)
    records = [json.loads(line) for line in (out / cache / "metrics.jsonl").read_text().splitlines()]
    seconds = [r["seconds"] for r in records if "loss" in r]
    return [seconds[0]] + [b - a for a, b in zip(seconds, seconds[1:])]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(2)
    with tempfile.TemporaryDirectory() as tmp:
        cached = epoch_times("memory", args.epochs, Path(tmp))
        plain = epoch_times("off", args.epochs, Path(tmp))
    steady_cached, steady_plain = statistics.median(cached[1:]), statistics.median(plain[1:])
    print("| run | first epoch (s) | median later epoch (s) |")
    print("|---|---:|---:|")
    print(f"| no cache | {plain[0]:.2f} | {steady_plain:.2f} |")
    print(f"| cached embeddings | {cached[0]:.2f} | {steady_cached:.2f} |")
    print(f"\nspeed-up of a steady-state epoch: {steady_plain / steady_cached:.1f}x "
          f"(whole {args.epochs}-epoch run: {sum(plain) / sum(cached):.1f}x)")


if __name__ == "__main__":
    main()
