"""CPU inference, torch against onnxruntime side by side (issue 16): three targets.

1. ``mni``: automatic LiteMedSAM (real weights, zero-shot, argmax of its 3 multi-mask
   outputs: the work of an automatic run) over axial slices of the MNI T1 template,
   slices/s (the middle --mni-slices slices; 189 is the whole volume);
2. ``prostate``: one box-prompted 2D segmentation of a 384x384 prostate slice, seconds
   after loading (median of --repeats calls in one process, after a warm-up call);
3. ``aorta``: prompted 3D propagation from a box on the middle slice of
   TotalSeg-examples' aorta CT (120x126x164), seconds per volume and the share spent in
   the image encoder (--aorta-max-slices limits the slices each way; 0: to the end).

Backends: ``torch``, ``onnxruntime`` (fp32) and ``onnxruntime-int8`` (``--precision int8``),
``torch-bf16`` and ``openvino-bf16`` (native bf16 CPUs only), ``openvino`` (fp32);
append ``:intraop`` to an onnxruntime one to switch off slice-parallel encoding (every
batch on one session of T intra-op threads, as before it). ``torch@filed`` (mni only) is
"today's torch path" of the issue: the code of main when issue 16 was filed (commit
499cfd8), unpacked with ``git archive`` and run in its own process with its own
``benchmarks/predict_volume.py`` (batch 1, its default), so the ratio against it is measured
side by side in the same run rather than taken from an old table.
Each row has wall-clock seconds and CPU seconds (user + system, all threads) of the timed
part: on a loaded machine the CPU seconds measure the work, the wall seconds the wait.

Each (target, backend, repeat) runs in its own process so that its peak RSS (ru_maxrss) is
its own; backends alternate within a repeat so that machine load hits both alike. The
ONNX graphs are exported once beforehand into a temporary cache (the export time is
reported apart: it is paid once per weights). Encoder time is measured by wrapping
``model.encode``; everything else in the per-slice path (intensity scaling, resize, decode,
logits back to the original grid, argmax) is "outside".

    python benchmarks/bench_cpu_inference.py                   # all three, 3 repeats
    python benchmarks/bench_cpu_inference.py --targets prostate --repeats 5
Prints a markdown table (--json FILE keeps the raw rows).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
PROSTATE_IMAGE = DATA / "MRI-Prostate/images/patient97/study97/volumn97/RUNMC23_14.png"
PROSTATE_MASK = DATA / "MRI-Prostate/masks/RUNMC23_14.png"
AORTA_CT = DATA / "TotalSeg-examples/aorta_ct_cropped.nii.gz"
AORTA_SEG = DATA / "TotalSeg-examples/aorta_seg.nii.gz"


FILED = "499cfd8"  # main when issue 16 was filed (2026-11-28)
FILED_BACKEND = "torch@filed"


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class EncoderClock:
    """Wraps a predictor's model so that encoder seconds are summed."""

    def __init__(self, model) -> None:
        self.model, self.seconds, self.calls = model, 0.0, 0

    def __getattr__(self, name):
        return getattr(self.model, name)

    def encode(self, images):
        start = time.perf_counter()
        out = self.model.encode(images)
        self.seconds += time.perf_counter() - start
        self.calls += images.shape[0]  # slices encoded (a call may carry several)
        return out


def cpu_seconds() -> float:
    """User + system CPU seconds of this process (all its threads): a measure of work that
    machine load inflates far less than wall-clock seconds."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def load(backend: str, threads: int):
    """``backend``: ENGINE[-PRECISION], e.g. torch, torch-bf16, onnxruntime (fp32),
    onnxruntime-int8, openvino-bf16; an onnxruntime name
    ending in ``:intraop`` runs every batch on the one T-thread session (no slice-parallel
    encoding: the path before it, for comparison)."""
    import torch

    from samtune.inference.predictor import Predictor

    torch.set_num_threads(threads)
    predictor = Predictor.from_model("lite_medsam")
    name, _, variant = backend.partition(":")
    engine, _, precision = name.partition("-")
    predictor = predictor.with_backend(engine, precision or "fp32", "lite_medsam")
    if variant == "intraop":
        predictor.model.encoder_one_core = None
    return predictor


def box_of(mask) -> tuple[float, float, float, float]:
    import numpy as np

    rows, cols = np.nonzero(mask)
    return float(cols.min()), float(rows.min()), float(cols.max()), float(rows.max())


def filed_source(root: Path) -> Path:
    """The filed commit's package and its predict_volume benchmark, unpacked under ``root``."""
    out = root / f"filed-{FILED}"
    if not (out / "src" / "samtune").is_dir():
        out.mkdir(parents=True, exist_ok=True)
        repo = Path(__file__).resolve().parents[1]
        archive = subprocess.run(["git", "-C", str(repo), "archive", FILED, "src", "benchmarks/predict_volume.py"],
                                 check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(out)], input=archive, check=True)
    return out


def measure_filed(target: str, threads: int, options: dict, root: Path) -> dict:
    """The filed commit's automatic MNI run, timed by that commit's own benchmark child."""
    if target != "mni":
        raise SystemExit(f"{FILED_BACKEND} measures the mni target only")
    src = filed_source(root)
    command = [sys.executable, str(src / "benchmarks/predict_volume.py"), "--child", "1", "--threads", str(threads)]
    if options["mni_slices"] < 189:
        command += ["--slices", str(options["mni_slices"])]
    env = {**os.environ, "PYTHONPATH": str(src / "src")}
    done = subprocess.run(command, env=env, check=True, capture_output=True, text=True, cwd=src)
    child = json.loads(done.stdout.strip().splitlines()[-1])
    return {"target": target, "backend": FILED_BACKEND, "threads": threads, "seconds": child["seconds"],
            "cpu_seconds": None, "slices": child["slices"], "slices_per_s": child["slices_per_s"],
            "peak_rss_mb": child["peak_rss_mb"]}


def measure(target: str, backend: str, threads: int, options: dict) -> dict:
    """Child process: one (target, backend) measurement."""
    from dataclasses import replace

    import numpy as np
    from PIL import Image

    from samtune.data.readers import read_image

    predictor = load(backend, threads)
    clock = EncoderClock(predictor.model)
    predictor = replace(predictor, model=clock)
    row = {"target": target, "backend": backend, "threads": threads}
    if target == "prostate":
        image = np.asarray(Image.open(PROSTATE_IMAGE))
        box = box_of(np.asarray(Image.open(PROSTATE_MASK)) > 0)
        predictor.predict_image(image, box=box)  # warm-up
        times, cpu = [], []
        for _ in range(options["calls"]):
            start, start_cpu = time.perf_counter(), cpu_seconds()
            mask = predictor.predict_image(image, box=box)
            times.append(time.perf_counter() - start)
            cpu.append(cpu_seconds() - start_cpu)
        row.update(seconds=statistics.median(times), cpu_seconds=statistics.median(cpu), pixels=int(mask.sum()))
    elif target == "mni":
        from samtune.assets import mni_template

        volume = read_image(mni_template("t1"))
        count = options["mni_slices"]
        middle = volume.array.shape[0] // 2
        sub = volume.array[middle - count // 2 : middle - count // 2 + count]
        auto = replace(predictor, mode="automatic")
        auto.predict_images([sub[0]])  # warm-up
        clock.seconds, clock.calls = 0.0, 0
        start, start_cpu = time.perf_counter(), cpu_seconds()
        labels = auto.predict_volume(sub).array
        seconds = time.perf_counter() - start
        row.update(seconds=seconds, cpu_seconds=cpu_seconds() - start_cpu, slices=count, encoded=clock.calls,
                   slices_per_s=count / seconds, encoder_share=clock.seconds / seconds,
                   labelled=int((labels > 0).sum()), labels_sha=hashlib.sha1(labels.tobytes()).hexdigest()[:12])
    elif target == "aorta":
        ct, seg = read_image(AORTA_CT), read_image(AORTA_SEG)
        middle = ct.array.shape[0] // 2
        box = box_of(seg.array[middle] > 0)
        predictor.predict_image(ct.array[middle], box=box)  # warm-up
        clock.seconds, clock.calls = 0.0, 0
        limit = options["aorta_max_slices"] or None
        start, start_cpu = time.perf_counter(), cpu_seconds()
        result = predictor.propagate(ct, middle, box=box, max_slices=limit)
        seconds = time.perf_counter() - start
        row["cpu_seconds"] = cpu_seconds() - start_cpu
        truth = seg.array > 0
        found = result.labels.array > 0
        row.update(seconds=seconds, slices=clock.calls, encoder_share=clock.seconds / seconds,
                   first=result.first, last=result.last,
                   dice_vs_totalseg=2 * float((found & truth).sum()) / float(found.sum() + truth.sum()))
    row["peak_rss_mb"] = peak_rss_mb()
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", nargs="+", default=["prostate", "mni", "aorta"])
    parser.add_argument("--backends", nargs="+", default=["torch", "onnxruntime"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--calls", type=int, default=3, help="prostate: timed calls per process")
    parser.add_argument("--mni-slices", type=int, default=189)
    parser.add_argument("--aorta-max-slices", type=int, default=0)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--child", nargs=2, metavar=("TARGET", "BACKEND"), help=argparse.SUPPRESS)
    parser.add_argument("--options", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(*args.child, args.threads, json.loads(args.options))))
        return
    options = {"calls": args.calls, "mni_slices": args.mni_slices, "aorta_max_slices": args.aorta_max_slices}
    env = dict(os.environ)
    env.setdefault("SAMTUNE_CACHE", tempfile.mkdtemp(prefix="samtune_bench_cache_"))
    for onnx_backend in [b for b in args.backends if b.startswith("onnxruntime")]:  # export once, untimed
        start = time.perf_counter()
        subprocess.run([sys.executable, __file__, "--child", "prostate", onnx_backend, "--threads",
                        str(args.threads), "--options", json.dumps({**options, "calls": 1})],
                       env=env, check=True, capture_output=True)
        print(f"ONNX export + first load (once per weights): {time.perf_counter() - start:.1f} s", file=sys.stderr)
    rows = []
    for target in args.targets:
        for repeat in range(args.repeats):
            for backend in args.backends:
                if backend == FILED_BACKEND:
                    row = measure_filed(target, args.threads, options, Path(env["SAMTUNE_CACHE"]))
                    row["repeat"] = repeat
                    rows.append(row)
                    print(json.dumps(row), file=sys.stderr)
                    continue
                done = subprocess.run(
                    [sys.executable, __file__, "--child", target, backend, "--threads", str(args.threads),
                     "--options", json.dumps(options)],
                    env=env, check=True, capture_output=True, text=True)
                row = json.loads(done.stdout.strip().splitlines()[-1])
                row["repeat"] = repeat
                rows.append(row)
                print(json.dumps(row), file=sys.stderr)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    print(table(rows, args.backends))


def table(rows: list[dict], backends: list[str]) -> str:
    """Medians per (target, backend); ratios against torch (and the filed torch path when it
    ran) of the same target, whatever order the backends were given in."""
    filed = FILED_BACKEND in backends
    lines = ["| target | backend | median seconds | median CPU s | slices/s | encoder share | peak RSS MB "
             "| ratio vs torch (wall) | ratio vs torch (CPU s) |" + (f" ratio vs {FILED} torch (wall) |" if filed else ""),
             "|---|---|---|---|---|---|---|---|---|" + ("---|" if filed else "")]
    for target in dict.fromkeys(r["target"] for r in rows):
        picked = {b: [r for r in rows if r["target"] == target and r["backend"] == b] for b in backends}
        picked = {b: p for b, p in picked.items() if p}
        medians = {b: statistics.median(r["seconds"] for r in p) for b, p in picked.items()}
        cpu_medians = {b: statistics.median(r["cpu_seconds"] for r in p) for b, p in picked.items()
                       if all(r["cpu_seconds"] is not None for r in p)}  # the filed child reports wall only
        for backend, mine in picked.items():
            seconds = medians[backend]
            rate = statistics.median(r["slices"] / r["seconds"] for r in mine) if "slices" in mine[0] else None
            share = statistics.median(r["encoder_share"] for r in mine) if "encoder_share" in mine[0] else None
            rss = statistics.median(r["peak_rss_mb"] for r in mine)
            cpu = cpu_medians.get(backend)
            cpu_text = f"{cpu:.2f}" if cpu else "-"
            cpu_ratio = f"{cpu_medians.get('torch', cpu) / cpu:.2f}x" if cpu else "-"
            line = (f"| {target} | {backend} | {seconds:.2f} | {cpu_text} | "
                    f"{f'{rate:.2f}' if rate else '-'} | {f'{share:.0%}' if share is not None else '-'} | {rss:.0f} | "
                    f"{medians.get('torch', seconds) / seconds:.2f}x | {cpu_ratio} |")
            if filed:
                line += f" {medians[FILED_BACKEND] / seconds:.2f}x |" if FILED_BACKEND in medians else " - |"
            lines.append(line)
    return "\n".join(lines)


if __name__ == "__main__":
    main()
