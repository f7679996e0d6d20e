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

With --device cuda all rows run in this one process: each step ends with a device
synchronise, the model is built on the GPU, and the memory column is the peak of
torch.cuda.max_memory_allocated for that row (reset between rows). --precision bf16 runs
the forward under bf16 autocast (weights and optimiser stay fp32).

    python benchmarks/strategies.py                       # all rows (~15 min on 2 cores)
    python benchmarks/strategies.py --configs lite_medsam:256 --steps 5
    python benchmarks/strategies.py --device cuda --precision bf16 \
        --configs sam_vit_h:1024 sam_vit_b:1024 mobile_sam:1024 --steps 10
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


def native_size(model_name: str) -> int:
    from samtune.models.registry import get_spec

    return get_spec(model_name).image_size


def measure(model_name: str, size: int, component: str, method: str, steps: int, threads: int,
            device: str = "cpu", precision: str = "fp32") -> dict:
    """Build, apply the strategy, time `steps` training steps (a child process on the CPU)."""
    from contextlib import nullcontext

    import torch
    import torch.nn.functional as F

    import samtune
    from samtune.methods import Strategy, apply_strategy, parameter_count, train_mode, trainable_parameters

    cuda = device == "cuda"
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    overrides = {} if size == native_size(model_name) else {"image_size": size}
    with torch.device(device):
        model = samtune.create_model(model_name, pretrained=False, **overrides)
    apply_strategy(model, Strategy(model_name, component, method))
    model.to(device)
    train_mode(model)
    optimizer = torch.optim.AdamW(trainable_parameters(model).values(), lr=1e-4)
    images = torch.rand(1, 3, size, size, device=device)
    boxes = torch.tensor([[0.25, 0.25, 0.75, 0.75]], device=device) * size
    autocast = (lambda: torch.autocast(device, dtype=torch.bfloat16)) if precision == "bf16" else nullcontext
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()

    def loss_from(masks: torch.Tensor) -> torch.Tensor:
        target = torch.zeros_like(masks)
        h, w = masks.shape[-2:]
        target[..., h // 4 : 3 * h // 4, w // 4 : 3 * w // 4] = 1  # a centred square
        return F.binary_cross_entropy_with_logits(masks, target)

    def step(run) -> float:
        start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        with autocast():
            out = run()
            masks = out[0] if isinstance(out, (tuple, list)) else out["masks"]
        loss_from(masks.float()).backward()
        optimizer.step()
        if cuda:
            torch.cuda.synchronize()
        return time.perf_counter() - start

    def timed(run) -> float:
        step(run)  # warm-up
        return statistics.median(step(run) for _ in range(steps))

    row = {
        "model": model_name,
        "size": size,
        "device": device,
        "precision": precision,
        "component": component,
        "method": method,
        "trainable": parameter_count(model)[0],
        "step_s": timed(lambda: model(images, boxes=boxes)),
    }
    if component == "decoder":
        with torch.no_grad(), autocast():
            embeddings = model.encode(images)
        row["cached_step_s"] = timed(lambda: model.decode(embeddings, boxes=boxes))
    if cuda:
        row["peak_gpu_mb"] = torch.cuda.max_memory_allocated() / 2**20
        del model, optimizer
        torch.cuda.empty_cache()
    else:
        row["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return row


def table(rows: list[dict]) -> str:
    gpu = any("peak_gpu_mb" in r for r in rows)
    memory = "peak GPU memory (MB)" if gpu else "peak RSS (MB)"
    digits = 4 if gpu else 3
    lines = [
        f"| model | input | component | method | trainable | step (s) | step on cached embeddings (s) | {memory} |",
        "|---|---|---|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        cached = f"{r['cached_step_s']:.{digits}f}" if "cached_step_s" in r else "-"
        lines.append(
            f"| {r['model']} | {r['size']} | {r['component']} | {r['method']} | {r['trainable']:,} "
            f"| {r['step_s']:.{digits}f} | {cached} | {r['peak_gpu_mb' if gpu else 'peak_rss_mb']:.0f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), help="MODEL:SIZE entries")
    parser.add_argument("--components", nargs="+", default=list(COMPONENTS))
    parser.add_argument("--methods", nargs="+", default=list(METHODS))
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    parser.add_argument("--json", help="also write the raw rows to this file")
    parser.add_argument("--one", nargs=4, metavar=("MODEL", "SIZE", "COMPONENT", "METHOD"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        name, size, component, method = args.one
        print(json.dumps(measure(name, int(size), component, method, args.steps, args.threads,
                                 precision=args.precision)))
        return
    rows = []
    for config in args.configs:
        name, size = config.split(":")
        for component in args.components:
            for method in args.methods:
                if args.device == "cuda":  # one process: peak memory is reset per row
                    rows.append(measure(name, int(size), component, method, args.steps, args.threads,
                                        device="cuda", precision=args.precision))
                else:
                    command = [
                        sys.executable, __file__, "--one", name, size, component, method,
                        "--steps", str(args.steps), "--threads", str(args.threads), "--precision", args.precision,
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
