"""nnU-Net v2's own training and validation iteration on a CPU, for the study's cost table.

    python benchmarks/nnunet_step.py WORK [--train 5] [--val 3] [--trainer nnUNetTrainer_1epoch]

WORK holds nnUNet_raw / nnUNet_preprocessed / nnUNet_results; without a preprocessed
Dataset004_Prostate there, the 5 prostate training slices are exported and planned first
(`samtune nnunet export` + nnU-Net's planning, 2d). The trainer is nnU-Net's own class
(found as `samtune.study.nnunet_launch` finds it) with its data loaders and augmentation;
each timed iteration is its ``train_step`` (forward, deep-supervised loss, backward, SGD)
or ``validation_step`` on the next batch its loader gives, after one untimed warm-up.
Prints the median seconds and the extrapolated epoch: 250 training + 50 validation
iterations (nnUNetTrainer's counts), as a short shipped trainer runs them.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def _prepare(work: Path) -> None:
    from samtune.data.nnunet_export import export_nnunet
    from samtune.study.nnunet_engine import plan_and_preprocess

    if not (work / "nnUNet_preprocessed" / "Dataset004_Prostate" / "nnUNetPlans.json").is_file():
        export = export_nnunet(DATA / "MRI-Prostate" / "train_5shot.csv", 4, "Prostate", work / "nnUNet_raw", root=DATA)
        plan_and_preprocess(export.folder, work, "2d")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("work", type=Path)
    parser.add_argument("--train", type=int, default=5)
    parser.add_argument("--val", type=int, default=3)
    parser.add_argument("--trainer", default="nnUNetTrainer_1epoch")
    args = parser.parse_args()
    work = args.work.absolute()
    for name in ("raw", "preprocessed", "results"):
        os.environ[f"nnUNet_{name}"] = str(work / f"nnUNet_{name}")
    os.environ.setdefault("nnUNet_n_proc_DA", "1")
    _prepare(work)

    import torch
    from batchgenerators.utilities.file_and_folder_operations import load_json

    from samtune.study.nnunet_launch import trainer_class

    folder = work / "nnUNet_preprocessed" / "Dataset004_Prostate"
    plans = load_json(str(folder / "nnUNetPlans.json"))
    plans["continue_training"] = False  # what nnU-Net's get_trainer_from_args sets for a new training
    trainer = trainer_class(args.trainer)(plans=plans, configuration="2d",
                                          fold="all", dataset_json=load_json(str(folder / "dataset.json")),
                                          device=torch.device("cpu"))
    trainer.on_train_start()
    try:
        trainer.network.train()
        trainer.train_step(next(trainer.dataloader_train))  # warm-up
        train_s = []
        for _ in range(args.train):
            started = time.perf_counter()
            trainer.train_step(next(trainer.dataloader_train))
            train_s.append(time.perf_counter() - started)
        trainer.network.eval()
        val_s = []
        with torch.no_grad():
            for _ in range(args.val):
                started = time.perf_counter()
                trainer.validation_step(next(trainer.dataloader_val))
                val_s.append(time.perf_counter() - started)
    finally:
        trainer.on_train_end()
    t, v = statistics.median(train_s), statistics.median(val_s)
    batch = trainer.configuration_manager.batch_size
    patch = trainer.configuration_manager.patch_size
    print(f"batch {batch}, patch {list(patch)}, threads {torch.get_num_threads()}")
    print(f"train iteration: median {t:.2f} s of {[round(s, 2) for s in train_s]}")
    print(f"validation iteration: median {v:.2f} s of {[round(s, 2) for s in val_s]}")
    print(f"one epoch (250 + 50 iterations): {(250 * t + 50 * v) / 60:.1f} min")


if __name__ == "__main__":
    main()
