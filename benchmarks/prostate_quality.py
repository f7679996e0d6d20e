"""Real-data quality: automatic (no-prompt) binary prostate segmentation (issue 5).

Trains lite_medsam on the 5 training slices of ../shared/data/MRI-Prostate and evaluates
on its 5 validation slices, for three strategies, each in its own process (so peak
memory is that run's own). Reports validation Dice (from `samtune eval --run`, original
pixel grid), wall time of training and peak RSS.

    python benchmarks/prostate_quality.py [--steps 200] [--out /tmp/prostate_runs]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

PROSTATE = Path(__file__).resolve().parents[2] / "shared" / "data" / "MRI-Prostate"
STRATEGIES = [
    ("encoder+decoder", "lora", "3e-4"),
    ("encoder+decoder", "adapter", "3e-4"),
    ("decoder", "full", "1e-4"),
]


def run(command: list[str]) -> None:
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"failed: {' '.join(command)}\n{done.stderr[-3000:]}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--out", default="/tmp/prostate_runs")
    args = parser.parse_args()
    rows = []
    for component, method, lr in STRATEGIES:
        name = f"{component.replace('+', '_')}_{method}"
        run_dir = Path(args.out) / name
        started = time.perf_counter()
        run([sys.executable, "-m", "samtune", "train", "default", "--out", str(run_dir), "--overwrite",
             "--set", f"data.train={PROSTATE / 'train_5shot.csv'}", "--set", f"data.val={PROSTATE / 'val_5shot.csv'}",
             "--set", f"strategy.component={component}", "--set", f"strategy.method={method}",
             "--set", f"optim.lr={lr}", "--set", f"optim.steps={args.steps}", "--set", "eval.every=50",
             "--set", "run.threads=2"])
        wall = time.perf_counter() - started
        summary = json.loads((run_dir / "summary.json").read_text())
        eval_dir = run_dir / "eval"
        run([sys.executable, "-m", "samtune", "eval", "--run", str(run_dir), "--out", str(eval_dir), "--overwrite"])
        report = json.loads((eval_dir / "summary.json").read_text())
        rows.append((f"lite_medsam / {component} / {method}", summary, wall, report))
    print("| strategy | trainable params | val Dice (eval --run) | best val Dice (loop) | train s | wall s | peak RSS MB |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for label, summary, wall, report in rows:
        dice = _mean_dice(report)
        print(f"| {label} | {summary['trainable_parameters']:,} | {dice:.4f} | {summary['best_val_dice']:.4f} | "
              f"{summary['train_seconds']:.0f} | {wall:.0f} | {summary['peak_rss_mb']:.0f} |")


def _mean_dice(report: dict) -> float:
    """Mean Dice of the single foreground class from an eval summary.json."""
    classes = report["classes"] if "classes" in report else report["summary"]
    first = next(iter(classes.values()))
    return float(first["dice"]["mean"])


if __name__ == "__main__":
    main()
