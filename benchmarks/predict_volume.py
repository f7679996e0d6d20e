"""Volume prediction speed and memory: `Predictor.predict_volume` on the MNI T1 template.

LiteMedSAM (real weights) in automatic mode, zero-shot: every slice goes through the
image encoder and an unprompted multimask decode (argmax over its 3 outputs). The labels
mean nothing, but the work per slice is exactly an automatic run's (encoder + decoder +
resize back), which is what the batch size changes. fp32, CPU, torch.set_num_threads(2)
unless --threads.

Each (batch size, repeat) runs in its own process so that its peak RSS (ru_maxrss,
including Python + torch + the model, ~0.5 GB) is its own; a warm-up forward runs before
the clock starts. Reported: median slices/s over --repeats, and the median peak RSS, with
the RSS reached after loading the model and the volume (before predicting) for reference.

    python benchmarks/predict_volume.py                      # 189 axial slices, batch 1/2/4, 3 repeats
    python benchmarks/predict_volume.py --slices 24          # middle 24 slices only
Prints a markdown table (and --json FILE keeps the raw rows).
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time


FULL_SLICES = 189  # axial slices of the MNI template


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(batch_size: int, slices: int | None, threads: int) -> dict:
    """Child process: load model and volume, warm up, time predict_volume."""
    import numpy as np
    import torch

    from samtune.assets import mni_template
    from samtune.data.geometry import LoadedImage
    from samtune.data.readers import read_image
    from samtune.inference.predictor import Predictor
    from samtune.models.registry import create_model

    torch.set_num_threads(threads)
    volume = read_image(mni_template("t1"))
    if slices is not None and slices < volume.array.shape[0]:
        start = (volume.array.shape[0] - slices) // 2
        volume = LoadedImage(np.ascontiguousarray(volume.array[start : start + slices]), volume.geometry, volume.path)
    predictor = Predictor(create_model("lite_medsam", pretrained=True).eval(), "automatic")
    predictor.predict_images([volume.array[0]])  # warm-up
    loaded_rss = peak_rss_mb()
    begin = time.perf_counter()
    labels = predictor.predict_volume(volume, axis=0, batch_size=batch_size)
    seconds = time.perf_counter() - begin
    count = volume.array.shape[0]
    assert labels.array.shape == volume.array.shape
    return {"batch_size": batch_size, "slices": count, "seconds": seconds, "slices_per_s": count / seconds,
            "rss_loaded_mb": loaded_rss, "peak_rss_mb": peak_rss_mb(), "threads": threads,
            "shape": list(volume.array.shape)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch-sizes", default="1,2,4")
    parser.add_argument("--slices", type=int, help="middle N axial slices only (default: all 189)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", help="also write the raw rows here")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(measure(args.child, args.slices, args.threads)))
        return
    rows = []
    sizes = [int(v) for v in args.batch_sizes.split(",")]
    for repeat in range(args.repeats):  # interleave batch sizes so that load elsewhere hits all alike
        for size in sizes:
            command = [sys.executable, __file__, "--child", str(size), "--threads", str(args.threads)]
            if args.slices:
                command += ["--slices", str(args.slices)]
            output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
            row = json.loads(output.strip().splitlines()[-1])
            row["repeat"] = repeat
            rows.append(row)
            print(f"batch {size} repeat {repeat}: {row['slices_per_s']:.3f} slices/s, "
                  f"peak RSS {row['peak_rss_mb']:.0f} MB", file=sys.stderr)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(rows, handle, indent=2)
    print("| batch size | slices timed | slices/s (median) | runs (slices/s) | s per 189-slice volume | "
          "RSS after load + warm-up (MB) | peak RSS (MB) |")
    print("|---|---|---|---|---|---|---|")
    for size in sizes:
        mine = [r for r in rows if r["batch_size"] == size]
        rates = [r["slices_per_s"] for r in mine]
        median = statistics.median(rates)
        print(f"| {size} | {mine[0]['slices']} | {median:.3f} | {', '.join(f'{v:.3f}' for v in rates)} | "
              f"{FULL_SLICES / median:.0f} | {statistics.median(r['rss_loaded_mb'] for r in mine):.0f} | "
              f"{statistics.median(r['peak_rss_mb'] for r in mine):.0f} |")


if __name__ == "__main__":
    main()
