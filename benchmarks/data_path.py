"""The training data path before and after issue 13 (item 1), side by side in one run.

Throughput: training samples per second at 1024 px on the MNI152 T1 volume (white-matter
map >= 128 as the mask, 189 z-slices, default augmentation, the study's hybrid prompts),
through what the loop reads:

- "f5132c6": the data path when the issue was filed, that commit's own code (its
  package unpacked with `git archive`, run in a child process), one micro-batch at a
  time in the training process. The ratios are against this row;
- "before": the same loop over today's dataset code: `sample_positions` ->
  `TrainSamples` (set_epoch + `training_sample`) -> collate;
- "DataLoader, N workers": `StepBatches` + `PickedItems(TrainSamples)` through
  `make_loader` then `receive` (what `Trainer` does now: workers send images unpadded
  and unnormalised, the training process builds them), worker start-up included.

Each variant runs twice: for the data path alone, and with a device step of
``--step-s`` seconds per sample (0.05 s: the fastest H200 training step measured here),
simulated as a sleep: the accelerator computes while the training process waits on it
without using a core. That is the case the loader is for. With no workers the process
builds a sample, then waits for the step; with workers the next samples are built while
it waits, so at best the loop runs at the step's pace.

Variants alternate within each repeat; the median over repeats is reported. The case is
read before timing (both paths keep it cached), so this is the per-sample cost. CPU
seconds per sample add this process's and its (finished) worker processes' user+system
time: on a machine with a free core per process, a path delivers about
processes / (CPU s per sample) samples per second.

Start-up reads: the data check and the dataset read every case twice before
(`check_source` then `SliceDataset`); `SliceDataset.checked` reads it once.

Memory: peak resident memory (ru_maxrss) of a fresh process that builds the training
data (the full volume) and a validation set of V slices (the volume's central V
z-slices) at 1024 px and runs one validation pass over it (no model: its memory does not
depend on V), for each V: "before" builds every validation sample first (as
`engine.api.train` did), "streamed" builds each when the pass reads it (`EvalSamples`).

    python benchmarks/data_path.py [--samples 48] [--repeats 3] [--workers 2] [--step-s 0 0.05]
                                   [--val-slices 12 48 96]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

SIZE = 1024
ROOT = Path(__file__).resolve().parents[1]


def _mni_folder(root: Path, slices: int | None = None) -> Path:
    """images/ + masks/ with the MNI T1 and its white-matter map (central `slices` z-slices)."""
    import SimpleITK as sitk

    from samtune.assets import mni_template

    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir(parents=True)
    for kind, folder in (("t1", "images"), ("wm", "masks")):
        image = sitk.ReadImage(str(mni_template(kind)))
        if slices is not None:
            depth = image.GetSize()[2]
            start = (depth - slices) // 2
            image = image[:, :, start:start + slices]
        sitk.WriteImage(image, str(root / folder / "mni152.nii.gz"))
    return root


def _config(augment: bool):
    from samtune.data.augment import AugmentConfig
    from samtune.data.dataset import SliceDatasetConfig
    from samtune.data.prompts import PromptConfig

    return SliceDatasetConfig(image_size=SIZE, normalization="imagenet", augment=AugmentConfig() if augment else None,
                              prompts=PromptConfig.study("hybrid"), seed=0)


def _labels():
    from samtune.data.labels import LabelMap

    return LabelMap.binary(threshold=128)


def _cpu_seconds() -> float:
    import resource

    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def throughput(folder: Path, samples: int, repeats: int, workers: int, step_s: float = 0.0,
               filed: Path | None = None) -> dict[str, tuple[float, float]]:
    from samtune.data.dataset import SliceDataset
    from samtune.data.prompts import PromptConfig
    from samtune.data.sources import load_source
    from samtune.engine.data import TrainSamples
    from samtune.engine.distributed import DistInfo
    from samtune.engine.loader import PickedItems, StepBatches, collate, make_loader, receive
    from samtune.engine.trainer import LoopSettings, sample_positions

    dataset = SliceDataset.checked(load_source(folder), _config(True), labels=_labels(), train=True)
    item = TrainSamples(dataset, PromptConfig.study("hybrid"), seed=0)
    settings = LoopSettings(steps=samples, batch_size=1, seed=0)
    cpu_device = torch.device("cpu")

    def device_step() -> None:
        if step_s:  # the accelerator computes; this process waits without using a core
            time.sleep(step_s)

    def before() -> None:
        for step in range(samples):
            collate([item(i, p) for i, p in sample_positions(step, 0, settings, len(dataset), DistInfo())])
            device_step()

    def loader(count: int):
        def run() -> None:
            order = StepBatches(len(dataset), 0, samples, 1)
            for batch in make_loader(PickedItems(item), count, cpu_device, 0, batch_sampler=order):
                receive(batch, cpu_device)  # what the loop does with a batch before the model reads it
                device_step()
        return run

    variants = {"before (training process)": before, "DataLoader, 0 workers": loader(0),
                f"DataLoader, {workers} workers": loader(workers)}
    rates: dict[str, list[float]] = {name: [] for name in variants}
    cpu: dict[str, list[float]] = {name: [] for name in variants}
    if filed is not None:
        rates[FILED_ROW], cpu[FILED_ROW] = [], []
    for _ in range(repeats):
        if filed is not None:  # its own process (its own package), timed inside it
            rate, cpu_s = run_filed(filed, folder, samples, step_s)
            rates[FILED_ROW].append(rate)
            cpu[FILED_ROW].append(cpu_s)
        for name, run in variants.items():
            start, start_cpu = time.perf_counter(), _cpu_seconds()
            run()
            rates[name].append(samples / (time.perf_counter() - start))
            cpu[name].append((_cpu_seconds() - start_cpu) / samples)
    return {name: (statistics.median(rates[name]), statistics.median(cpu[name])) for name in rates}


FILED = "f5132c6"  # main when issue 13 was filed
FILED_ROW = f"{FILED} (when the issue was filed): its whole data path"


def filed_child(folder: Path, samples: int, step_s: float) -> None:
    """Run in a process whose PYTHONPATH is `FILED`'s src: that commit's whole data path
    (its `SliceDataset`, prompts, `sample_positions`, `training_sample`, `collate`), one
    micro-batch at a time in the training process. Prints samples/s and CPU s per sample."""
    from samtune.data.augment import AugmentConfig
    from samtune.data.dataset import SliceDataset, SliceDatasetConfig
    from samtune.data.labels import LabelMap
    from samtune.data.prompts import PromptConfig
    from samtune.data.sources import load_source
    from samtune.engine.data import training_sample
    from samtune.engine.distributed import DistInfo
    from samtune.engine.trainer import LoopSettings, collate, sample_positions

    torch.set_num_threads(1)
    config = SliceDatasetConfig(image_size=SIZE, normalization="imagenet", augment=AugmentConfig(),
                                prompts=PromptConfig.study("hybrid"), seed=0)
    dataset = SliceDataset(load_source(folder), config, labels=LabelMap.binary(threshold=128), train=True)
    prompts, settings = PromptConfig.study("hybrid"), LoopSettings(steps=samples, batch_size=1, seed=0)

    def item(index: int, position: int) -> dict:
        dataset.set_epoch(position // len(dataset))
        return training_sample(dataset[index], prompts, 0, position)

    item(0, 0)  # the case read and cached, as the other variants have it
    start, start_cpu = time.perf_counter(), _cpu_seconds()
    for step in range(samples):
        collate([item(i, p) for i, p in sample_positions(step, 0, settings, len(dataset), DistInfo())])
        if step_s:
            time.sleep(step_s)
    print(json.dumps({"rate": samples / (time.perf_counter() - start),
                      "cpu": (_cpu_seconds() - start_cpu) / samples}))


def filed_source(root: Path) -> Path | None:
    """`FILED`'s src/ unpacked under root (None when this is not a git checkout)."""
    out = root / "filed"
    out.mkdir()
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", FILED, "src"], capture_output=True)
    if archive.returncode != 0:
        return None
    subprocess.run(["tar", "-x", "-C", str(out)], input=archive.stdout, check=True)
    return out / "src"


def run_filed(src: Path, folder: Path, samples: int, step_s: float) -> tuple[float, float]:
    env = {**os.environ, "PYTHONPATH": str(src)}
    out = subprocess.run([sys.executable, __file__, "--filed-child", str(folder), str(samples), str(step_s)],
                         check=True, capture_output=True, text=True, env=env)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    return result["rate"], result["cpu"]


def startup_reads(folder: Path) -> dict[str, float]:
    from samtune.data.dataset import SliceDataset
    from samtune.data.sources import load_source
    from samtune.data.validate import check_source

    times = {}
    start = time.perf_counter()
    source = load_source(folder)
    check_source(source, _labels(), 0, None).raise_if_fatal()
    SliceDataset(source, _config(True), labels=_labels(), train=True)
    times["before: check_source + SliceDataset (2 reads)"] = time.perf_counter() - start
    start = time.perf_counter()
    SliceDataset.checked(load_source(folder), _config(True), labels=_labels(), train=True)
    times["SliceDataset.checked (1 read)"] = time.perf_counter() - start
    return times


def memory_child(train_folder: Path, val_folder: Path, streamed: bool) -> None:
    """Build training + validation data, one validation pass; print peak RSS in MiB (JSON)."""
    import resource

    from samtune.data.dataset import SliceDataset
    from samtune.data.prompts import PromptConfig
    from samtune.data.sources import load_source
    from samtune.engine.data import EvalSamples, eval_sample
    from samtune.engine.loader import collate, make_loader

    torch.set_num_threads(1)
    prompts = PromptConfig.study("hybrid")
    SliceDataset.checked(load_source(train_folder), _config(True), labels=_labels(), train=True)
    val = SliceDataset.checked(load_source(val_folder), _config(False), labels=_labels(), train=False)
    total = 0.0
    if streamed:
        for batch in make_loader(EvalSamples(val, prompts, 0), 0, torch.device("cpu"), 0):
            total += float(batch["image"][0, 0, 0, 0])
    else:
        items = [eval_sample(val[i], prompts, 0) for i in range(len(val))]
        for sample in items:
            total += float(collate([sample])["image"][0, 0, 0, 0])
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"slices": len(val), "peak_mb": round(peak, 1)}))


def memory(root: Path, train_folder: Path, counts: list[int]) -> list[tuple[int, float, float]]:
    rows = []
    for count in counts:
        val_folder = _mni_folder(root / f"val{count}", count)
        peaks = []
        for streamed in (False, True):
            out = subprocess.run([sys.executable, __file__, "--memory-child", str(train_folder), str(val_folder),
                                  "streamed" if streamed else "before"], check=True, capture_output=True, text=True)
            peaks.append(json.loads(out.stdout.strip().splitlines()[-1])["peak_mb"])
        rows.append((count, peaks[0], peaks[1]))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=48, help="training samples per timed run")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per variant (median reported)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--step-s", type=float, nargs="+", default=[0.0, 0.05],
                        help="seconds the accelerator computes per sample while the training process waits "
                             "(0: the data path alone)")
    parser.add_argument("--val-slices", type=int, nargs="*", default=[12, 48, 96], help="none: skip the memory part")
    parser.add_argument("--memory-child", nargs=3, help=argparse.SUPPRESS)
    parser.add_argument("--filed-child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.filed_child:
        folder, samples, step_s = args.filed_child
        filed_child(Path(folder), int(samples), float(step_s))
        return
    if args.memory_child:
        train_folder, val_folder, kind = args.memory_child
        memory_child(Path(train_folder), Path(val_folder), kind == "streamed")
        return
    torch.set_num_threads(1)
    np.seterr(all="ignore")
    print(f"# {os.cpu_count()} CPUs, torch {torch.__version__}, torch threads 1, {SIZE} px, MNI152 T1 "
          "(wm >= 128), augment=default, prompts=study hybrid")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        train_folder = _mni_folder(root / "train")
        filed = filed_source(root)
        if filed is None:
            print(f"(not a git checkout: the {FILED} row is left out)")
        for step_s in args.step_s:
            title = "data path alone" if not step_s else f"with a {step_s:g} s device step per sample"
            print(f"\n{title}\n\n| path | samples/s (median of {args.repeats} x {args.samples}) "
                  "| CPU s per sample |\n|---|---|---|")
            rates = throughput(train_folder, args.samples, args.repeats, args.workers, step_s, filed)
            base = rates[FILED_ROW if filed else "before (training process)"][0]
            for name, (rate, cpu) in sorted(rates.items(), key=lambda row: row[0] != FILED_ROW):
                print(f"| {name} | {rate:.2f} ({rate / base:.2f}x) | {cpu:.3f} |", flush=True)
        print("\n| start-up (train set, one MNI volume) | seconds |\n|---|---|")
        for name, seconds in startup_reads(train_folder).items():
            print(f"| {name} | {seconds:.2f} |", flush=True)
        if not args.val_slices:
            return
        print("\n| validation slices | peak RSS before (MiB) | peak RSS streamed (MiB) |\n|---|---|---|")
        for count, before, streamed in memory(root, train_folder, args.val_slices):
            print(f"| {count} | {before:.0f} | {streamed:.0f} |", flush=True)


if __name__ == "__main__":
    main()
