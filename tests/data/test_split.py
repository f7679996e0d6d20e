"""Few-shot splits by patient group, and the `samtune data` CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from samtune.cli.main import main
from samtune.data.sources import Case, load_source
from samtune.data.split import split_cases, write_split
from samtune.errors import DataError


def _cases(groups):
    return [Case(f"c{i}", (f"/d/c{i}.png",), f"/d/m{i}.png", g) for i, g in enumerate(groups)]


def test_split_keeps_groups_together_and_is_seeded():
    cases = _cases(["p1", "p1", "p2", "p3", "p3", "p3", "p4", "p5"])
    split = split_cases(cases, shots=2, seed=0)
    train_groups = {c.group for c in split.train}
    val_groups = {c.group for c in split.val}
    assert len(train_groups) == 2 and not train_groups & val_groups
    assert len(split.train) + len(split.val) == 8  # with --val unset every other group validates
    for group in ("p1", "p3"):
        sides = {c in split.train for c in cases if c.group == group}
        assert len(sides) == 1  # never split across train/val
    again = split_cases(list(reversed(cases)), shots=2, seed=0)  # row order does not matter
    assert {c.case_id for c in again.train} == {c.case_id for c in split.train}
    seeds = {frozenset(c.group for c in split_cases(cases, 2, s).train) for s in range(10)}
    assert len(seeds) > 1
    assert len({c.group for c in split_cases(cases, 2, 0, val=1).val}) == 1


def test_split_errors():
    with pytest.raises(DataError, match=r"--shots 3 leaves no validation case: the source has 3 patient group\(s\); use --shots 2"):
        split_cases(_cases(["a", "b", "c"]), shots=3, seed=0)
    with pytest.raises(DataError, match="--shots must be at least 1"):
        split_cases(_cases(["a", "b"]), shots=0, seed=0)
    with pytest.raises(DataError, match="--val must be between 1 and 1"):
        split_cases(_cases(["a", "b"]), shots=1, seed=0, val=2)


def test_prostate_split_written_and_reloaded(prostate_dir, tmp_path):
    source = load_source(prostate_dir / "val_5shot.csv")
    split = split_cases(source, shots=2, seed=1)
    paths = write_split(split, tmp_path / "out", source)
    train = load_source(paths["train"])
    assert [c.case_id for c in train.cases] == [c.case_id for c in split.train]
    resolved = lambda cases: [tuple(p.resolve() for p in c.images) for c in cases]  # noqa: E731
    assert resolved(train.cases) == resolved(split.train)
    assert [c.group for c in train.cases] == [c.group for c in split.train]
    summary = json.loads(paths["json"].read_text())
    assert summary["shots"] == 2 and summary["seed"] == 1 and len(summary["val"]) == 3


def test_patient77_slices_stay_together(prostate_dir, tmp_path):
    # RUNMC03_12 (train list) and RUNMC03_16 (val list) are two slices of patient 77.
    rows = (prostate_dir / "train_5shot.csv").read_text() + (prostate_dir / "val_5shot.csv").read_text()
    (tmp_path / "all.csv").write_text(rows)
    source = load_source(tmp_path / "all.csv", root=prostate_dir.parent)
    assert len(source.cases) == 10 and len(source.groups) == 9
    for seed in range(5):
        split = split_cases(source, shots=4, seed=seed)
        sides = {c in split.train for c in source.cases if c.case_id.startswith("RUNMC03")}
        assert len(sides) == 1


def test_cli_check_and_split(tmp_path, capsys):
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    for i in range(4):
        Image.fromarray(np.full((4, 4), 10 * i, np.uint8)).save(tmp_path / "images" / f"s{i}.png")
        mask = np.zeros((4, 4), np.uint8)
        mask[1, 1] = 255
        Image.fromarray(mask).save(tmp_path / "masks" / f"s{i}.png")
    assert main(["data", "check", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "cases: 4 labelled in 4 patient group(s)" in out and "problems: 0 error(s)" in out
    assert main(["data", "check", str(tmp_path), "--labels", "zone=254"]) == 2
    assert "label value(s) [255] not declared (zone=254)" in capsys.readouterr().out
    assert main(["data", "split", str(tmp_path), "--shots", "2", "--seed", "3", "--out", str(tmp_path / "sp")]) == 0
    assert len(load_source(tmp_path / "sp" / "train.csv").cases) == 2
    assert main(["data", "split", str(tmp_path), "--shots", "9", "--out", str(tmp_path / "sp")]) == 2
    assert "samtune: error: --shots 9 leaves no validation case" in capsys.readouterr().err
    assert main(["data", "check", str(tmp_path / "missing")]) == 2
    assert main(["data", "check", str(tmp_path), "--labels", "oops"]) == 2
