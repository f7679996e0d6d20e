"""`samtune eval --run RUN_DIR [--data SOURCE] [--split]`: the thin CLI over evaluate_run."""

from __future__ import annotations

import csv

import pytest

from samtune.cli.main import main

pytestmark = pytest.mark.usefixtures("one_thread")


def test_eval_run_prints_the_table_and_writes_reports(automatic_run, tmp_path, capsys):
    out = tmp_path / "eval"
    assert main(["eval", "--run", str(automatic_run), "--data", str(automatic_run.parent / "train"),
                 "--out", str(out), "--batch-size", "2"]) == 0
    printed = capsys.readouterr().out
    assert "1 foreground" in printed and "4 cases of" in printed
    with open(out / "per_case.csv", newline="") as handle:
        assert [row["case"] for row in csv.DictReader(handle)] == ["case00", "case01", "case02", "case03"]
    assert (out / "summary.json").is_file()


def test_eval_run_argument_errors(automatic_run, tmp_path, capsys):
    out = ["--out", str(tmp_path / "eval")]
    cases = [
        (["eval", "--data", "x", *out], "--data and --split go with --run"),
        (["eval", "--run", str(automatic_run), "--pred", "p", *out], "drop --pred/--gt"),
        (["eval", "--run", str(automatic_run), "--classes", "1=a", *out], "class names come from the run"),
        (["eval", "--run", str(tmp_path), *out], "is not a training run: it has no config.yaml"),
        (["eval", "--run", str(automatic_run), "--data", str(tmp_path / "nowhere"), *out], "data source not found"),
    ]
    for args, message in cases:
        assert main(args) == 2
        assert message in capsys.readouterr().err
