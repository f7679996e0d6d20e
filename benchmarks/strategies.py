"""Training-step time and peak memory of every component x method, per backbone and input size.

One training step = forward (image encoder, prompt encoder, mask decoder on one box),
BCE loss against a fixed mask, backward, AdamW step; batch 1, fp32,
torch.set_num_threads(2) unless --threads. Random weights (timings do not depend on them).
Each configuration runs in its own process so that its peak RSS (ru_maxrss, which
includes the ~0.3 GB of Python + torch) is its own; the step time is the median of
--steps timed steps after one warm-up step.

Decoder-only strategies leave the image encoder frozen and in eval mode, so an engine can
compute embeddings once and reuse them: for those rows the "cached" column gives the step
time on precomputed embeddings.

    python benchmarks/strategies.py                       # all rows (~15 min on 2 cores)
    python benchmarks/strategies.py --configs lite_medsam:256 --steps 5
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

CONFIGS = ("lite_medsam:256", "sam_vit_b:256", "sam_vit_b:512")
COMPONENTS = ("decoder", "encoder+decoder")
METHODS = ("full", "adapter", "lora", "dora")


def measure(model_name: str, size: int, component: str, method: str, steps: int, threads: int) -> dict:
    """Run in a child process: build, apply the strategy, time `steps` training steps."""
    import torch
    import torch.nn.functional as F

    import samtune
    from samtune.methods import Strategy, apply_strategy, parameter_count, train_mode, trainable_parameters

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    overrides = {} if model_name == "lite_medsam" else {"image_size": size}
    model = samtune.create_model(model_name, pretrained=False, **overrides)
    apply_strategy(model, Strategy(model_name, component, method))
    train_mode(model)
    optimizer = torch.optim.AdamW(trainable_parameters(model).values(), lr=1e-4)
    images = torch.rand(1, 3, size, size)
    boxes = torch.tensor([[0.25, 0.25, 0.75, 0.75]]) * size

    def loss_from(masks: torch.Tensor) -> torch.Tensor:
        target = torch.zeros_like(masks)
        h, w = masks.shape[-2:]
        target[..., h // 4 : 3 * h // 4, w // 4 : 3 * w // 4] = 1  # a centred square
        return F.binary_cross_entropy_with_logits(masks, target)

    def step(run) -> float:
        start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        out = run()
        masks = out[0] if isinstance(out, (tuple, list)) else out["masks"]
        loss_from(masks).backward()
        optimizer.step()
        return time.perf_counter() - start

    def timed(run) -> float:
        step(run)  # warm-up
        return statistics.median(step(run) for _ in range(steps))

    row = {
        "model": model_name,
        "size": size,
        "component": component,
        "method": method,
        "trainable": parameter_count(model)[0],
        "step_s": timed(lambda: model(images, boxes=boxes)),
    }
    if component == "decoder":
        with torch.no_grad():
            embeddings = model.encode(images)
        row["cached_step_s"] = timed(lambda: model.decode(embeddings, boxes=boxes))
    row["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return row


def table(rows: list[dict]) -> str:
    lines = [
        "| model | input | component | method | trainable | step (s) | step on cached embeddings (s) | peak RSS (MB) |",
        "|---|---|---|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        cached = f"{r['cached_step_s']:.3f}" if "cached_step_s" in r else "-"
        lines.append(
            f"| {r['model']} | {r['size']} | {r['component']} | {r['method']} | {r['trainable']:,} "
            f"| {r['step_s']:.3f} | {cached} | {r['peak_rss_mb']:.0f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), help="MODEL:SIZE entries")
    parser.add_argument("--components", nargs="+", default=list(COMPONENTS))
    parser.add_argument("--methods", nargs="+", default=list(METHODS))
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", help="also write the raw rows to this file")
    parser.add_argument("--one", nargs=4, metavar=("MODEL", "SIZE", "COMPONENT", "METHOD"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        name, size, component, method = args.one
        print(json.dumps(measure(name, int(size), component, method, args.steps, args.threads)))
        return
    rows = []
    for config in args.configs:
        name, size = config.split(":")
        for component in args.components:
            for method in args.methods:
                command = [
                    sys.executable, __file__, "--one", name, size, component, method,
                    "--steps", str(args.steps), "--threads", str(args.threads),
                ]
                result = subprocess.run(command, capture_output=True, text=True, check=True)
                rows.append(json.loads(result.stdout.strip().splitlines()[-1]))
                print(table(rows[-1:]).splitlines()[-1], file=sys.stderr, flush=True)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(rows, handle, indent=2)
    print(table(rows))


if __name__ == "__main__":
    main()
