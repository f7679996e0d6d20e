"""torch.compile of the LiteMedSAM image encoder under bf16 autocast against eager bf16 (issue 16).

A probe for the next step past the bf16 default: seconds per slice of the encoder alone
(random input, batch --batch, --threads threads, median of --repeats calls after a warm-up
call) eager and compiled, and the first compiled call's time (the compile cost, paid once
per process unless inductor's cache in /tmp/torchinductor_$USER already holds it). Needs a
C compiler for inductor; bf16 only makes sense on a CPU with native bf16.

    python benchmarks/encoder_compile.py [--threads 2] [--batch 2] [--repeats 4]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=4)
    args = parser.parse_args()
    from samtune.inference.precision import cpu_name, native_bf16
    from samtune.inference.predictor import Predictor

    torch.set_num_threads(args.threads)
    model = Predictor.from_model("lite_medsam").model
    images = torch.randn(args.batch, 3, model.image_size, model.image_size)

    def per_slice(encode) -> float:
        encode(images)  # warm-up
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            encode(images)
            times.append(time.perf_counter() - start)
        return statistics.median(times) / args.batch

    print(f"CPU: {cpu_name()}, native bf16: {native_bf16('cpu')}, threads {args.threads}, batch {args.batch}")
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        eager = per_slice(model.encode)
        compiled = torch.compile(model.encode)
        start = time.perf_counter()
        compiled(images)
        first = time.perf_counter() - start
        fast = per_slice(compiled)
    print(f"eager bf16: {eager:.3f} s/slice; compiled bf16: {fast:.3f} s/slice ({eager / fast:.2f}x); "
          f"first compiled call {first:.1f} s")


if __name__ == "__main__":
    main()
