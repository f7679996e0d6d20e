"""Single model vs 5-fold ensemble vs 5-fold ensemble + TTA on 5-shot prostate MRI (issue 18).

LiteMedSAM, decoder fully fine-tuned (STEPS steps, default 200; lr 1e-4, as cpu_prostate), automatic
whole-gland segmentation. The single model trains on all 5 training slices; the 5 fold
models each on 4 of them (5-fold cross-validation by case, `samtune.data.folds`). All are
scored on the 5 validation slices. Validation runs once, at the last step, so every run
keeps its final weights: no checkpoint is chosen on the scored slices.

    PYTHONPATH=src python benchmarks/ensembles.py OUT_DIR [STEPS]

Prints Dice per variant, prediction wall time, and the Spearman rank correlation between
the QC disagreement and the per-case Dice.
"""

from __future__ import annotations

import csv
import json
import sys
import time
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "MRI-Prostate"
STEPS = int(sys.argv[2]) if len(sys.argv) > 2 else 200


def spearman(a: list[float], b: list[float]) -> float:
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])


def main(out: Path) -> None:
    from samtune.inference.run_eval import evaluate_run
    from samtune.study.config import load_study
    from samtune.study.runner import run_study

    out.mkdir(parents=True, exist_ok=True)
    study = {
        "title": "ensembles benchmark", "base": "default",
        "train": {"task": {"mode": "automatic"}, "optim": {"lr": 0.0001, "steps": STEPS, "warmup_steps": 10,
                                                            "schedule": "cosine"},
                  "eval": {"every": STEPS}, "run": {"device": "cpu"}},
        "backbones": {"lite_medsam": {}}, "components": ["decoder"], "methods": ["full"],
        "datasets": {
            "single": {"train": str(DATA / "train_5shot.csv"), "val": str(DATA / "val_5shot.csv"), "labels": "binary"},
            "cv": {"train": str(DATA / "train_5shot.csv"), "folds": 5, "test": str(DATA / "val_5shot.csv"),
                   "labels": "binary"},
        },
        "seeds": [0],
    }
    path = out / "study.in.yaml"
    path.write_text(yaml.safe_dump(study, sort_keys=False))
    started = time.monotonic()
    run_study(load_study(path), out / "study", workers=2)
    print(f"study: {time.monotonic() - started:.0f} s")
    runs = sorted((out / "study" / "runs").iterdir())
    single = [r for r in runs if r.name.startswith("single__")]
    folds = [r for r in runs if r.name.startswith("cv__")]
    results = {}
    for name, members, tta in (("single", single, None), ("5-fold ensemble", folds, None),
                               ("5-fold ensemble + TTA", folds, "flips")):
        target = out / "eval" / name.replace(" ", "_").replace("+", "plus")
        started = time.monotonic()
        result = evaluate_run(members if len(members) > 1 or tta else members[0], target,
                              data=str(DATA / "val_5shot.csv"), overwrite=True, tta=tta)
        seconds = time.monotonic() - started
        dice = {row["case"]: row["dice"] for row in result.accumulator.per_case_rows()}
        entry = {"dice_mean": float(np.mean(list(dice.values()))), "dice_std": float(np.std(list(dice.values()))),
                 "seconds": seconds, "per_case": dice}
        qc = target / "qc.csv"
        if qc.exists():
            with open(qc, newline="") as handle:
                rows = {row["case"]: float(row["disagreement"]) for row in csv.DictReader(handle)}
            cases = sorted(dice)
            entry["qc_spearman_vs_dice"] = spearman([rows[c] for c in cases], [dice[c] for c in cases])
            entry["qc"] = rows
        results[name] = entry
        print(name, json.dumps({k: v for k, v in entry.items() if k not in ("per_case", "qc")}))
    (out / "ensembles.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
