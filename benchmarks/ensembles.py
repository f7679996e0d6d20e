"""Single model vs k-fold ensemble vs ensemble + TTA flips, and the QC score (issue 18).

One command gives the whole table: the 5-shot prostate task and the four tasks of
`../shared/data/MedScribble-4tasks` (3-5 cases each).

    PYTHONPATH=src python benchmarks/ensembles.py OUT [--steps 100] [--tasks prostate ct-bladder ...]

Model: LiteMedSAM, decoder-only LoRA (the image encoder is frozen, so its embeddings are
cached and a step costs ~0.3 s on an idle 2-core CPU), automatic binary segmentation,
``--steps`` steps (lr ``--lr``, 10 warm-up steps, cosine). Validation runs once, at the
last step, so every run keeps its final weights: no checkpoint is chosen on scored cases.

**Prostate** (5 training slices `train_5shot.csv`, scored on the 5 slices of
`val_5shot.csv`): the 5 fold models of a 5-fold split of the training slices (each trains
on 4) are the ensemble; "single (fold model)" is each fold model alone, averaged over the
5 (what one member gives); "single (all 5 slices)" is one more model trained on all 5.

**MedScribble tasks** (N = 5 or 3 cases, no separate test set): nested leave-one-out. For
each test case t, the ensemble is the N-1 models of an (N-1)-fold split of the other N-1
cases, i.e. the models trained on all cases but {t, j} for each j != t: one model per pair
of held-out cases, C(N, 2) models per task (10 for N = 5, each trained on 3 cases; 3 for
N = 3, each trained on 1). "Single" is each of those members alone on t, averaged. No
model ever sees its test case. TTA: the 4 flip variants (`--tta flips`) of every member.

Wall time: `evaluate_run` per variant (loading the models, predicting, scoring, writing),
summed over the test cases. QC: the `qc.csv` disagreement of the ensemble (and of
ensemble + TTA), against the ensemble's per-case Dice, Spearman rank correlation per task
and pooled over all scored cases (a good QC score correlates negatively).
Writes OUT/ensembles.json and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import time
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
PROSTATE = SHARED / "MRI-Prostate"
SCRIBBLE = SHARED / "MedScribble-4tasks"
TASKS = ("prostate", "ct-bladder", "xray-femur", "octa-vessels", "mri-lv-myocardium")
VARIANTS = ("single", "ensemble", "ensemble + TTA")
THREADS = 1  # --threads; one thread is faster on a shared 2-core machine (no OpenMP contention)
WORKERS = 1  # --workers: cells trained at once (each in its own process)


def spearman(a: list[float], b: list[float]) -> float:
    """Rank correlation (ties share their mean rank); NaN when either side is constant
    (e.g. every case Dice 0), where no ordering exists to compare."""
    from scipy.stats import rankdata

    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return float(np.corrcoef(rankdata(a), rankdata(b))[0, 1])


def write_list(path: Path, rows: list[tuple[str, str]]) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{image},{mask}\n" for image, mask in rows))
    return str(path)


def scribble_cases(task: str) -> list[tuple[str, str]]:
    """(image, mask) absolute paths of a MedScribble task, from its all.csv."""
    with open(SCRIBBLE / task / "all.csv", newline="") as handle:
        return [(str(SCRIBBLE / image), str(SCRIBBLE / mask)) for image, mask in csv.reader(handle)]


def case_name(pair: tuple[str, str]) -> str:
    return Path(pair[0]).stem


def study_dict(datasets: dict, steps: int, lr: float, threads: int) -> dict:
    return {
        "title": "ensembles benchmark", "base": "default",
        "train": {"task": {"mode": "automatic"},
                  "optim": {"lr": lr, "steps": steps, "warmup_steps": 10, "schedule": "cosine"},
                  "eval": {"every": steps}, "run": {"device": "cpu", "threads": threads}},
        "backbones": {"lite_medsam": {}}, "components": ["decoder"], "methods": ["lora"],
        "datasets": datasets, "seeds": [0],
    }


def train(out: Path, datasets: dict, steps: int, lr: float) -> tuple[dict[str, Path], float]:
    """Run the study (one cell per dataset, in this process); dataset name -> run dir."""
    from samtune.study.preflight import load_study
    from samtune.study.runner import run_study

    out.mkdir(parents=True, exist_ok=True)
    path = out / "study.in.yaml"
    path.write_text(yaml.safe_dump(study_dict(datasets, steps, lr, THREADS), sort_keys=False))
    started = time.monotonic()
    run_study(load_study(path), out / "study", isolate=WORKERS > 1, workers=WORKERS)
    seconds = time.monotonic() - started
    runs = {run.name.split("__")[0]: run for run in (out / "study" / "runs").iterdir()}
    return runs, seconds


def evaluate(members: list[Path], data: str, target: Path, tta: str | None) -> tuple[dict, dict, float]:
    """Per-case Dice, per-case QC disagreement (ensembles only) and wall seconds."""
    from samtune.inference.run_eval import evaluate_run

    started = time.monotonic()
    result = evaluate_run(members if len(members) > 1 or tta else members[0], target, data=data,
                          overwrite=True, tta=tta)
    seconds = time.monotonic() - started
    dice = {row["case"]: float(row["dice"]) for row in result.accumulator.per_case_rows()}
    qc = {}
    if (target / "qc.csv").exists():
        with open(target / "qc.csv", newline="") as handle:
            qc = {row["case"]: float(row["disagreement"]) for row in csv.DictReader(handle)}
    return dice, qc, seconds


def prostate(out: Path, steps: int, lr: float) -> dict:
    val = str(PROSTATE / "val_5shot.csv")
    datasets = {"all5": {"train": str(PROSTATE / "train_5shot.csv"), "val": val, "labels": "binary"},
                "cv": {"train": str(PROSTATE / "train_5shot.csv"), "folds": 5, "test": val, "labels": "binary"}}
    runs, train_s = train(out, datasets, steps, lr)
    folds = sorted(run for run in (out / "study" / "runs").iterdir() if run.name.startswith("cv__"))
    per_case: dict[str, dict[str, float]] = {v: {} for v in VARIANTS + ("single (all 5 slices)",)}
    seconds = dict.fromkeys(per_case, 0.0)
    singles = []
    for number, fold in enumerate(folds):
        dice, _, s = evaluate([fold], val, out / "eval" / f"fold{number}", None)
        singles.append(dice)
        seconds["single"] += s / len(folds)  # one model's cost
    per_case["single"] = {c: float(np.mean([d[c] for d in singles])) for c in singles[0]}
    per_case["single (all 5 slices)"], _, seconds["single (all 5 slices)"] = evaluate(
        [runs["all5"]], val, out / "eval" / "all5", None)
    qc = {}
    for variant, tta in (("ensemble", None), ("ensemble + TTA", "flips")):
        per_case[variant], qc[variant], seconds[variant] = evaluate(folds, val, out / "eval" / variant.replace(" ", ""), tta)
    return {"members": len(folds), "models": len(folds) + 1, "train_s": train_s, "dice": per_case,
            "predict_s": seconds, "qc": qc}


def scribble(task: str, out: Path, steps: int, lr: float) -> dict:
    cases = scribble_cases(task)
    names = [case_name(c) for c in cases]
    datasets, held = {}, {}
    for a, b in itertools.combinations(range(len(cases)), 2):
        name = f"x{a}{b}"
        held[(a, b)] = name
        datasets[name] = {"train": write_list(out / "lists" / f"{name}_train.csv",
                                              [c for i, c in enumerate(cases) if i not in (a, b)]),
                          "val": write_list(out / "lists" / f"{name}_val.csv", [cases[a], cases[b]]),
                          "labels": "binary"}
    runs, train_s = train(out, datasets, steps, lr)
    per_case: dict[str, dict[str, float]] = {v: {} for v in VARIANTS}
    seconds = dict.fromkeys(VARIANTS, 0.0)
    qc: dict[str, dict[str, float]] = {"ensemble": {}, "ensemble + TTA": {}}
    singles: dict[str, list[float]] = {n: [] for n in names}
    for name in held.values():  # each pair model alone, on both cases it never saw
        dice, _, s = evaluate([runs[name]], datasets[name]["val"], out / "eval" / name, None)
        for case, value in dice.items():
            singles[case].append(value)
        seconds["single"] += s
    per_case["single"] = {c: float(np.mean(v)) for c, v in singles.items()}
    seconds["single"] /= len(cases) - 1  # N(N-1) case predictions made; one model per test case needs N
    for t, case in enumerate(cases):
        members = [runs[held[tuple(sorted((t, j)))]] for j in range(len(cases)) if j != t]
        data = write_list(out / "lists" / f"test{t}.csv", [case])
        for variant, tta in (("ensemble", None), ("ensemble + TTA", "flips")):
            dice, q, s = evaluate(members, data, out / "eval" / f"test{t}_{variant.replace(' ', '')}", tta)
            per_case[variant].update(dice)
            qc[variant].update(q)
            seconds[variant] += s
    return {"members": len(cases) - 1, "models": len(held), "train_s": train_s, "dice": per_case,
            "predict_s": seconds, "qc": qc}


def table(results: dict) -> str:
    lines = ["| task | cases | variant | members | mean Dice | cases better than single | predict s | "
             "Spearman(QC, Dice) |", "|---|---:|---|---:|---:|---:|---:|---:|"]
    pooled: dict[str, tuple[list[float], list[float]]] = {"ensemble": ([], []), "ensemble + TTA": ([], [])}
    for task, r in results.items():
        single = r["dice"]["single"]
        for variant, dice in r["dice"].items():
            cases = sorted(dice)
            better = "" if variant == "single" else f"{sum(dice[c] > single[c] + 1e-9 for c in cases)}/{len(cases)}"
            rho = ""
            if variant in r["qc"] and r["qc"][variant]:
                q = [r["qc"][variant][c] for c in cases]
                rho = f"{spearman(q, [dice[c] for c in cases]):+.2f}".replace("+nan", "undefined")
                pooled[variant][0].extend(q)
                pooled[variant][1].extend(dice[c] for c in cases)
            members = 1 if variant.startswith("single") else r["members"]
            lines.append(f"| {task} | {len(cases)} | {variant} | {members} | {np.mean(list(dice.values())):.3f} | "
                         f"{better} | {r['predict_s'][variant]:.0f} | {rho} |")
    lines.append("")
    for variant, (q, d) in pooled.items():
        if len(q) > 2:
            rho = f"{spearman(q, d):+.2f}".replace("+nan", "undefined (constant)")
            lines.append(f"pooled Spearman(QC, Dice), {variant}: {rho} over {len(q)} cases")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--lr", type=float, default=3e-4)
    parser.add_argument("--threads", type=int, default=1, help="torch threads for training and prediction")
    parser.add_argument("--workers", type=int, default=1, help="cells trained at once (study --workers)")
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=TASKS)
    args = parser.parse_args()
    global THREADS, WORKERS
    THREADS, WORKERS = args.threads, args.workers
    import torch

    torch.set_num_threads(args.threads)
    results_path = args.out / "ensembles.json"
    results = json.loads(results_path.read_text()) if results_path.exists() else {}
    for task in args.tasks:
        started = time.monotonic()
        out = args.out / task
        results[task] = prostate(out, args.steps, args.lr) if task == "prostate" else scribble(task, out, args.steps, args.lr)
        results[task]["wall_s"] = time.monotonic() - started
        results[task]["steps"], results[task]["lr"] = args.steps, args.lr
        results_path.write_text(json.dumps(results, indent=2) + "\n")
        print(f"{task}: {results[task]['wall_s']:.0f} s (training {results[task]['train_s']:.0f} s)", flush=True)
    print(table({t: results[t] for t in TASKS if t in results}))


if __name__ == "__main__":
    main()
