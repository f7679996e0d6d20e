"""MetricAccumulator: rows per case and class, summaries with NaN / inf counts."""

from __future__ import annotations

import math

import numpy as np
import pytest

from samtune.evaluation.accumulator import PER_CASE_COLUMNS, MetricAccumulator, summarize_values


def _square(shape, rows, cols, label=1, dtype=np.uint8):
    labels = np.zeros(shape, dtype=dtype)
    labels[rows, cols] = label
    return labels


def _two_cases(accumulator: MetricAccumulator) -> None:
    # Case a: class 1 overlaps half (Dice 0.5), class 2 identical (Dice 1).
    gt_a = _square((12, 12), slice(0, 4), slice(0, 4))
    pred_a = _square((12, 12), slice(0, 4), slice(2, 6))
    gt_a[8:10, 8:10] = 2
    pred_a[8:10, 8:10] = 2
    accumulator.add("a", pred_a, gt_a, spacing=(1.0, 1.0))
    # Case b: class 1 missed entirely (prediction empty); class 2 absent from both.
    gt_b = _square((12, 12), slice(3, 6), slice(3, 6))
    accumulator.add("b", np.zeros_like(gt_b), gt_b, spacing=(1.0, 1.0))


def test_summarize_values_ignores_and_counts_nan_and_inf():
    stats = summarize_values([0.5, 1.0, 0.0, math.nan, math.inf])
    assert stats["mean"] == pytest.approx(0.5)
    assert stats["median"] == pytest.approx(0.5)
    assert stats["std"] == pytest.approx(math.sqrt(1 / 6))  # population std of 0.5, 1, 0
    assert (stats["n"], stats["n_nan"], stats["n_inf"]) == (3, 1, 1)
    assert summarize_values([math.inf]) == {
        "mean": None, "median": None, "std": None, "n": 0, "n_nan": 0, "n_inf": 1
    }


def test_rows_fill_absent_classes_with_the_both_empty_rule():
    accumulator = MetricAccumulator(class_names={1: "gland"})
    _two_cases(accumulator)
    rows = accumulator.per_case_rows()
    assert [(r["case"], r["class"]) for r in rows] == [("a", 1), ("a", 2), ("b", 1), ("b", 2)]
    assert all(tuple(r) == PER_CASE_COLUMNS for r in rows)
    assert rows[0]["name"] == "gland" and rows[1]["name"] == ""
    assert rows[0]["dice"] == pytest.approx(0.5)
    b1, b2 = rows[2], rows[3]
    assert (b1["dice"], b1["iou"], b1["hd95"], b1["nsd"]) == (0.0, 0.0, math.inf, 0.0)
    assert (b1["gt_voxels"], b1["pred_voxels"]) == (9, 0)
    assert (b2["dice"], b2["iou"], b2["hd95"], b2["nsd"]) == (1.0, 1.0, 0.0, 1.0)


def test_summary_per_class_with_counts():
    accumulator = MetricAccumulator(nsd_tolerance=2.0)
    _two_cases(accumulator)
    summary = accumulator.summary()
    assert summary["n_cases"] == 2 and summary["nsd_tolerance"] == {1: 2.0, 2: 2.0}
    c1, c2 = summary["classes"][1], summary["classes"][2]
    assert c1["n_cases"] == 2
    assert c1["dice"]["mean"] == pytest.approx(0.25)  # (0.5 + 0) / 2
    assert c1["hd95"]["n_inf"] == 1 and c1["hd95"]["n"] == 1
    assert c1["hd95"]["mean"] == pytest.approx(2.0)  # the shifted square: 2 columns
    assert c2["dice"]["mean"] == 1.0 and c2["hd95"]["mean"] == 0.0
    assert (c1["n_both_empty"], c2["n_both_empty"]) == (0, 1)
    assert summary["mean_over_classes"]["dice"] == pytest.approx((0.25 + 1.0) / 2)


def test_both_empty_nan_leaves_the_class_out_and_counts_it():
    accumulator = MetricAccumulator(both_empty="nan")
    _two_cases(accumulator)
    c2 = accumulator.summary()["classes"][2]
    assert c2["dice"]["mean"] == 1.0 and c2["dice"]["n"] == 1 and c2["dice"]["n_nan"] == 1
    assert math.isnan(accumulator.per_case_rows()[3]["dice"])


def test_explicit_classes_score_exactly_those():
    accumulator = MetricAccumulator()
    gt = _square((8, 8), slice(1, 3), slice(1, 3), label=2)
    accumulator.add("x", gt.copy(), gt, classes=[1])
    accumulator.add("y", gt.copy(), gt, classes=[2])
    rows = accumulator.per_case_rows()
    assert [(r["case"], r["class"], r["dice"]) for r in rows] == [("x", 1, 1.0), ("y", 2, 1.0)]
    assert accumulator.classes == [1, 2] and accumulator.case_ids == ["x", "y"]


def test_three_d_case_uses_spacing():
    gt = np.zeros((4, 6, 6), dtype=np.uint8)
    pred = np.zeros((4, 6, 6), dtype=np.uint8)
    gt[1, 1:4, 1:4] = 1
    pred[2, 1:4, 1:4] = 1  # one slice further along z, 5 mm apart
    accumulator = MetricAccumulator(nsd_tolerance=4.0)
    metrics = accumulator.add("vol", pred, gt, spacing=(5.0, 0.8, 0.8))
    assert metrics[1].hd95 == pytest.approx(5.0) and metrics[1].nsd == 0.0 and metrics[1].dice == 0.0


def test_errors():
    accumulator = MetricAccumulator()
    labels = np.ones((4, 4), dtype=np.uint8)
    accumulator.add("a", labels, labels)
    with pytest.raises(ValueError, match="already added"):
        accumulator.add("a", labels, labels)
    with pytest.raises(ValueError, match="both_empty"):
        MetricAccumulator(both_empty="one")
