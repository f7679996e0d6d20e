"""Small surprises of a first session (issue 12, item 12): data check on PNGs, split paths, help texts."""

from __future__ import annotations

import csv
import os

import pytest
from tests.helpers.generated_data import write_disc_dataset

from samtune.cli.main import build_parser, main


def test_data_check_says_pngs_have_no_spacing(tmp_path, capsys):
    source = write_disc_dataset(tmp_path / "discs", 2, seed=0)
    assert main(["data", "check", str(source)]) == 0
    out = capsys.readouterr().out
    assert "spacings (mm): none (the format stores no spacing; distances in pixels) (2)" in out
    assert "1x1" not in out


def test_split_keeps_the_folders_the_user_gave(tmp_path, monkeypatch, capsys):
    real = write_disc_dataset(tmp_path / "storage" / "discs", 3, seed=0)
    (tmp_path / "project").mkdir()
    os.symlink(real.parent, tmp_path / "project" / "data")  # a data folder linked into a project
    monkeypatch.chdir(tmp_path / "project")
    assert main(["data", "split", "data/discs", "--shots", "1", "--out", "splits"]) == 0
    with open(tmp_path / "project" / "splits" / "train.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert rows and all(row["image"].startswith("../data/discs/images/") for row in rows)
    assert all(row["mask"].startswith("../data/discs/masks/") for row in rows)
    assert "storage" not in (tmp_path / "project" / "splits" / "val.csv").read_text()


@pytest.mark.parametrize("argv, text", [
    (["segment", "--help"], "box around the object"),
    (["data", "split", "--help"], "Draw --shots patient groups"),
    (["data", "check", "--help"], "store no spacing"),
    (["export", "--help"], "num_multimask_outputs"),
])
def test_help_texts(argv, text, capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(argv)
    assert text in " ".join(capsys.readouterr().out.split())
