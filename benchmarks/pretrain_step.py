"""Masked-image pretraining: seconds per optimiser step and peak memory (issue 14).

One process per configuration (peak RSS is a per-process high-water mark). A step is
what `samtune pretrain` does per step at batch 1: mask-token insertion, encoder forward
on the full grid, pixel decoder, masked L1, backward, AdamW update of the encoder, mask
token and decoder. Weights are random (the cost does not depend on their values); the
image is a real MNI T1 slice.

    python benchmarks/pretrain_step.py [--configs lite_medsam:256 sam_vit_b:256] [--steps 4] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import subprocess
import sys
import time


def measure(model_name: str, size: int, steps: int, threads: int, patch: int, ratio: float) -> dict:
    import numpy as np
    import torch

    import samtune
    from samtune.assets import mni_template
    from samtune.data.unlabeled import UnlabeledSlices, list_unlabeled
    from samtune.engine.objective_mim import MaskedImageObjective
    from samtune.engine.pretrain import _prepare_encoder
    from samtune.models.mim_decoder import MaskedImageModel, random_mask

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    sam = samtune.create_model(model_name, pretrained=False, image_size=size)
    _prepare_encoder(sam)
    model = MaskedImageModel(sam.image_encoder, sam.prompt_encoder.image_embedding_size[0], size, patch).train()
    for module in model.modules():  # as train_mode does: BatchNorm stays in eval
        if getattr(module, "_samtune_keep_eval", False):
            module.eval()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-4)
    images, _ = list_unlabeled([mni_template("t1")])
    data = UnlabeledSlices(images, size, sam.normalization)
    objective = MaskedImageObjective(patch)
    times = []
    for step in range(steps + 1):  # step 0 warms up (allocations, first-call overheads)
        sample = data[90 + step]
        batch = {"image": sample["image"][None], "valid": sample["valid"][None],
                 "mim_mask": random_mask(size // patch, ratio, np.random.default_rng(step))[None]}
        started = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        loss = objective.loss(objective.logits(model, batch), batch)
        loss.backward()
        optimizer.step()
        if step:
            times.append(time.perf_counter() - started)
    return {"model": model_name, "size": size, "threads": threads, "steps": steps,
            "median_s_per_step": round(statistics.median(times), 3), "min_s": round(min(times), 3),
            "trainable_parameters": sum(p.numel() for p in params),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--configs", nargs="+", default=["lite_medsam:256", "sam_vit_b:256"])
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--patch", type=int, default=32)
    parser.add_argument("--ratio", type=float, default=0.6)
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        name, size = args.one.split(":")
        print(json.dumps(measure(name, int(size), args.steps, args.threads, args.patch, args.ratio)))
        return
    print(f"# {platform.processor() or platform.machine()}, {args.threads} threads")
    for config in args.configs:
        out = subprocess.run([sys.executable, __file__, "--one", config, "--steps", str(args.steps),
                              "--threads", str(args.threads), "--patch", str(args.patch), "--ratio", str(args.ratio)],
                             capture_output=True, text=True, check=True)
        print(out.stdout.strip().splitlines()[-1], flush=True)


if __name__ == "__main__":
    main()
