"""U-Net baseline training step beside SAM strategies, same machine, one run.

U-Net rows: the planned U-Net (`samtune.models.unet`, 2 output channels) at the frame nnU-Net
and samtune plan for the 384 px prostate slices (7 levels, 32..512 filters), and at 256 px
(6 levels); one step = forward, cross-entropy against a centred square, backward, AdamW;
batch 1, fp32. SAM rows come from benchmarks/strategies.py's own measurement (one box, BCE).
Each row runs in its own process (peak RSS, ru_maxrss, is its own: it includes ~0.3 GB of
Python + torch); the step time is the median of --steps steps after one warm-up.

    python benchmarks/unet_step.py --steps 3
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

SAM_ROWS = (("lite_medsam", "256", "decoder", "full"), ("lite_medsam", "256", "encoder+decoder", "lora"),
            ("lite_medsam", "256", "encoder+decoder", "full"))
UNET_SIZES = (384, 256)


def measure_unet(size: int, steps: int, threads: int) -> dict:
    import torch
    import torch.nn.functional as F

    from samtune.models.registry import create_model
    from samtune.models.unet_plan import plan_unet

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    plan = plan_unet([(size, size)], [(1.0, 1.0)])
    model = create_model("unet", num_multimask_outputs=2, **plan.overrides()).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    images = torch.rand(1, 3, size, size)
    target = torch.zeros(1, size, size, dtype=torch.long)
    target[:, size // 4 : 3 * size // 4, size // 4 : 3 * size // 4] = 1

    def step() -> float:
        start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        F.cross_entropy(model.decode(model.encode(images))[0], target).backward()
        optimizer.step()
        return time.perf_counter() - start

    step()
    return {"model": f"unet ({plan.depth} levels)", "size": size, "component": "all (scratch)", "method": "full",
            "trainable": sum(p.numel() for p in model.parameters()),
            "step_s": statistics.median(step() for _ in range(steps)),
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--one-unet", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one_unet:
        print(json.dumps(measure_unet(args.one_unet, args.steps, args.threads)))
        return
    strategies = Path(__file__).with_name("strategies.py")
    commands = [[sys.executable, __file__, "--one-unet", str(s)] for s in UNET_SIZES]
    commands += [[sys.executable, str(strategies), "--one", *row] for row in SAM_ROWS]
    print("| model | input | component | method | trainable | step (s) | peak RSS (MB) |")
    print("|---|---|---|---|---:|---:|---:|")
    for command in commands:
        command += ["--steps", str(args.steps), "--threads", str(args.threads)]
        done = subprocess.run(command, capture_output=True, text=True, check=True)
        r = json.loads(done.stdout.strip().splitlines()[-1])
        print(f"| {r['model']} | {r['size']} | {r['component']} | {r['method']} | {r['trainable']:,} "
              f"| {r['step_s']:.3f} | {r['peak_rss_mb']:.0f} |", flush=True)


if __name__ == "__main__":
    main()
