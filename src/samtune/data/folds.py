"""k-fold cross-validation splits by patient group, seeded, written as split folders.

The source's patient groups (`Case.group`; each image of a 2D list without patient
information is its own group) are sorted by name, shuffled with
``np.random.default_rng(seed)`` and dealt round-robin into ``folds`` folds, so fold sizes
differ by at most one group and every case of a patient lands in the same fold. Fold
``f`` validates on its own groups and trains on all the others: every case is validated
exactly once over the K folds (as nnU-Net's 5-fold cross-validation, by patient).

`write_folds` writes ``fold<f>/train.csv``, ``fold<f>/val.csv`` and ``fold<f>/split.json``
(each a split folder that `load_source`, `samtune train` and ``samtune eval --data
DIR/fold<f>`` read) and ``folds.json`` (the groups of every fold).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from samtune.atomic import atomic_path
from samtune.data.sources import Source
from samtune.data.split import Split, write_split
from samtune.errors import DataError


def fold_groups(source: Source, folds: int, seed: int = 0) -> list[list[str]]:
    """The patient groups of each fold (sorted within a fold)."""
    groups = sorted({case.group for case in source.cases})
    if folds < 2:
        raise DataError(f"--folds must be at least 2, got {folds}")
    if folds > len(groups):
        raise DataError(f"--folds {folds} is more than the {len(groups)} patient group(s) of {source.path}: every "
                        f"fold needs one; use --folds {len(groups)} or fewer" if len(groups) >= 2 else
                        f"{source.path} has {len(groups)} patient group(s): cross-validation needs at least 2")
    order = np.random.default_rng(seed).permutation(len(groups))
    dealt: list[list[str]] = [[] for _ in range(folds)]
    for position, index in enumerate(order):
        dealt[position % folds].append(groups[index])
    return [sorted(fold) for fold in dealt]


def fold_split(source: Source, folds: int, fold: int, seed: int = 0) -> Split:
    """Fold ``fold`` (0-based): train on the other folds' groups, validate on its own."""
    if not 0 <= fold < folds:
        raise DataError(f"fold {fold} does not exist; folds are 0..{folds - 1}")
    held_out = set(fold_groups(source, folds, seed)[fold])
    train = [case for case in source.cases if case.group not in held_out]
    val = [case for case in source.cases if case.group in held_out]
    return Split(train, val, shots=len({case.group for case in train}), seed=seed)


def write_fold(source: Source, folds: int, fold: int, out_dir: str | Path, seed: int = 0) -> Path:
    """One fold's split folder (train.csv, val.csv, split.json with the fold recorded)."""
    out_dir = Path(out_dir)
    paths = write_split(fold_split(source, folds, fold, seed), out_dir, source)
    record = json.loads(paths["json"].read_text(encoding="utf-8"))
    record.update(folds=folds, fold=fold)
    with atomic_path(paths["json"]) as tmp:
        tmp.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return out_dir


def write_folds(source: Source, folds: int, out_dir: str | Path, seed: int = 0) -> list[Path]:
    """Every fold's split folder under ``out_dir`` and ``folds.json``; returns the folders."""
    out_dir = Path(out_dir)
    groups = fold_groups(source, folds, seed)  # refuses a bad count before writing
    written = [write_fold(source, folds, fold, out_dir / f"fold{fold}", seed) for fold in range(folds)]
    with atomic_path(out_dir / "folds.json") as tmp:
        tmp.write_text(json.dumps({"source": str(source.path), "folds": folds, "seed": seed, "groups": groups},
                                  indent=2) + "\n", encoding="utf-8")
    return written
