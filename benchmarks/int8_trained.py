"""int8, onnxruntime fp32 and (where the CPU has it natively) bf16 on torch and OpenVINO
against torch fp32 on trained automatic runs (issue 16, item 3).

The earlier int8 checks used zero-shot LiteMedSAM: box-prompted prostate slices, and an
automatic MNI run whose argmax labels every pixel (so it could not move). This one scores
fine-tuned automatic runs, e.g. the LiteMedSAM cells of `cpu_prostate_baselines`, on their
own validation data with `samtune.inference.run_eval.evaluate_run` (the code behind
``samtune eval --run``), once per path, and reports each path's mean Dice and its largest
per-case Dice change against torch fp32. The issue's rule: a reduced path may be the
default only if it changes Dice by at most 0.005.

    python benchmarks/int8_trained.py RUN [RUN ...] [--threads 2] [--paths torch:fp32 openvino:bf16]

ONNX graphs go to a temporary cache unless SAMTUNE_CACHE is set. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import tempfile
import time
from pathlib import Path

PATHS = (("torch", "fp32"), ("onnxruntime", "fp32"), ("onnxruntime", "int8"))


def per_case_dice(per_case: Path) -> dict[tuple[str, str], float]:
    with per_case.open() as handle:
        return {(row["case"], row["class"]): float(row["dice"]) for row in csv.DictReader(handle)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--paths", nargs="+", metavar="BACKEND:PRECISION",
                        help="only these, e.g. torch:fp32 openvino:bf16 (the first is the reference)")
    args = parser.parse_args()
    os.environ.setdefault("SAMTUNE_CACHE", tempfile.mkdtemp(prefix="samtune_int8_cache_"))
    import torch

    from samtune.inference.run_eval import evaluate_run

    torch.set_num_threads(args.threads)
    lines = ["| run | path | mean Dice | max abs per-case change vs torch fp32 | seconds (incl. export) |",
             "|---|---|---|---|---|"]
    from samtune.inference.precision import native_bf16

    from samtune.inference.backends import openvino_available

    paths = PATHS + ((("torch", "bf16"),) if native_bf16("cpu") else ())
    paths += (("openvino", "bf16"),) if native_bf16("cpu") and openvino_available() else ()
    if args.paths:
        paths = tuple(tuple(p.split(":")) for p in args.paths)
    with tempfile.TemporaryDirectory() as scratch:
        for run in args.runs:
            reference: dict[tuple[str, str], float] | None = None
            for backend, precision in paths:
                start = time.perf_counter()
                result = evaluate_run(run, Path(scratch) / f"{run.name}-{backend}-{precision}",
                                      backend=backend, precision=precision)
                seconds = time.perf_counter() - start
                dice = per_case_dice(result.per_case_path)
                reference = reference or dice
                change = max(abs(dice[key] - reference[key]) for key in reference)
                mean = sum(dice.values()) / len(dice)
                lines.append(f"| {run.name} | {backend} {precision} | {mean:.4f} | {change:.4f} | {seconds:.1f} |")
                print(lines[-1], file=sys.stderr, flush=True)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
