"""Report files: per_case.csv, strict summary.json, atomic writes, the printed table."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest

from samtune.evaluation.evaluate import EvalCase, evaluate_cases, write_report
from samtune.evaluation.report import format_summary_table, write_per_case_csv


def _accumulator():
    gt = np.zeros((10, 10), dtype=np.uint8)
    gt[2:6, 1:5] = 1
    pred = np.zeros_like(gt)
    pred[2:6, 3:7] = 1
    cases = [
        EvalCase("half", pred, gt, (1.0, 1.0)),
        EvalCase("missed", np.zeros_like(gt), gt, (1.0, 1.0)),
        EvalCase("exact", gt.copy(), gt, (1.0, 1.0)),
    ]
    return evaluate_cases(iter(cases), classes=[1], nsd_tolerance=1.0, class_names={1: "lesion"})


def _strict_json(text: str):
    def refuse(value):
        raise ValueError(f"non-standard JSON constant {value}")

    return json.loads(text, parse_constant=refuse)


def test_write_report_round_trip(tmp_path):
    table = write_report(_accumulator(), tmp_path / "out", extra={"note": "x"})
    with open(tmp_path / "out" / "per_case.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["case"] for r in rows] == ["half", "missed", "exact"]
    assert float(rows[0]["dice"]) == pytest.approx(0.5)
    assert rows[1]["hd95"] == "inf" and float(rows[1]["dice"]) == 0.0
    assert rows[2]["name"] == "lesion" and rows[2]["gt_voxels"] == "16"
    summary = _strict_json((tmp_path / "out" / "summary.json").read_text())
    dice = summary["classes"]["1"]["dice"]
    assert dice["mean"] == pytest.approx(0.5) and dice["median"] == pytest.approx(0.5)
    assert dice["std"] == pytest.approx(math.sqrt(1 / 6))
    assert summary["classes"]["1"]["hd95"]["n_inf"] == 1
    assert summary["note"] == "x" and summary["nsd_tolerance"] == {"1": 1.0}
    assert "1 lesion" in table and "0.500 ± 0.408" in table and "1.000 ± 1.000 (+1 inf)" in table
    assert "1 infinite HD95 (mm) value(s)" in table
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["per_case.csv", "summary.json"]


def test_statistic_without_values_is_null_in_json(tmp_path):
    gt = np.zeros((6, 6), dtype=np.uint8)
    gt[1:3, 1:3] = 1
    accumulator = evaluate_cases([EvalCase("only", np.zeros_like(gt), gt)], classes=[1])
    write_report(accumulator, tmp_path)
    hd95 = _strict_json((tmp_path / "summary.json").read_text())["classes"]["1"]["hd95"]
    assert hd95 == {"mean": None, "median": None, "std": None, "n": 0, "n_nan": 0, "n_inf": 1}
    assert "-" in format_summary_table(accumulator.summary())


def _one_row():
    gt = np.zeros((6, 6), dtype=np.uint8)
    gt[1:3, 1:3] = 1
    return evaluate_cases([EvalCase("only", gt, gt)], classes=[1]).per_case_rows()


def test_atomic_write_replaces_and_leaves_no_temporary_file(tmp_path):
    target = tmp_path / "per_case.csv"
    target.write_text("old")
    write_per_case_csv(_one_row(), target)
    assert target.read_text().startswith("case,class,")
    assert [p.name for p in tmp_path.iterdir()] == ["per_case.csv"]


def test_atomic_write_failure_keeps_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "per_case.csv"
    target.write_text("old")

    def fail(*args):
        raise OSError("disk full")

    monkeypatch.setattr("samtune.atomic.os.replace", fail)
    with pytest.raises(OSError):
        write_per_case_csv(_one_row(), target)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["per_case.csv"]


def test_table_notes_cases_scored_by_the_both_empty_rule():
    labels = np.zeros((6, 6), dtype=np.uint8)
    labels[1:3, 1:3] = 1
    with_two = labels.copy()
    with_two[4:6, 4:6] = 2
    cases = [EvalCase("a", with_two, with_two), EvalCase("b", labels, labels)]
    table = format_summary_table(evaluate_cases(cases).summary())
    assert "class 2: 1 of 2 case(s) have it in neither mask and score as perfect" in table
    assert "class 1:" not in table
    table = format_summary_table(evaluate_cases(cases, both_empty="nan").summary())
    assert "neither mask" not in table and "class 2: 1 undefined Dice value(s)" in table
