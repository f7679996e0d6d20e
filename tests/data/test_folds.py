"""k-fold splits by patient group (issue 18): every group validated exactly once."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from samtune.cli.main import main
from samtune.data.folds import fold_groups, fold_split
from samtune.data.sources import load_source
from samtune.errors import DataError


def write_list(path: Path, patients: int, slices: int) -> Path:
    """A list file of `patients` x `slices` rows (the files need not exist for splitting)."""
    rows = ["image,mask,case,group"]
    for p in range(patients):
        for s in range(slices):
            rows.append(f"img/p{p}_{s}.png,msk/p{p}_{s}.png,p{p}_{s},patient{p}")
    path.write_text("\n".join(rows) + "\n")
    return path


@pytest.fixture
def source(tmp_path):
    return load_source(write_list(tmp_path / "cases.csv", patients=7, slices=2))


def test_folds_partition_the_patients_with_sizes_within_one(source):
    folds = fold_groups(source, 3, seed=0)
    flat = [g for fold in folds for g in fold]
    assert sorted(flat) == sorted(f"patient{p}" for p in range(7)) and len(set(flat)) == 7
    assert sorted(len(f) for f in folds) == [2, 2, 3]
    assert fold_groups(source, 3, seed=0) == folds  # seeded
    assert fold_groups(source, 3, seed=1) != folds


def test_a_fold_trains_on_the_others_and_never_splits_a_patient(source):
    held = fold_groups(source, 3, seed=0)
    for fold in range(3):
        split = fold_split(source, 3, fold, seed=0)
        val_groups = {c.group for c in split.val}
        assert val_groups == set(held[fold]) and not val_groups & {c.group for c in split.train}
        assert len(split.train) + len(split.val) == 14 and len(split.val) == 2 * len(held[fold])


def test_data_split_folds_writes_a_split_folder_per_fold(source, tmp_path, capsys):
    out = tmp_path / "cv"
    assert main(["data", "split", str(source.path), "--folds", "3", "--out", str(out)]) == 0
    seen = []
    for fold in range(3):
        with open(out / f"fold{fold}" / "val.csv", newline="") as handle:
            seen += [row["case"] for row in csv.DictReader(handle)]
        record = json.loads((out / f"fold{fold}" / "split.json").read_text())
        assert record["fold"] == fold and record["folds"] == 3
        assert len(load_source(out / f"fold{fold}" / "train.csv").cases) + len(
            load_source(out / f"fold{fold}" / "val.csv").cases) == 14
    assert sorted(seen) == sorted(c.case_id for c in source.cases)
    assert json.loads((out / "folds.json").read_text())["groups"] == fold_groups(source, 3, 0)


def test_more_folds_than_patients_is_refused(source):
    with pytest.raises(DataError, match=r"--folds 8 is more than the 7 patient group\(s\)"):
        fold_groups(source, 8)
