"""`score_folders`: `samtune eval --pred --gt` as one library call (the CLI only prints it)."""

import json

import numpy as np
import pytest
from PIL import Image

from samtune.evaluation.folder_report import score_folders


def test_score_folders_writes_the_reports_and_returns_what_to_show(tmp_path):
    pred, gt = tmp_path / "pred", tmp_path / "gt"
    pred.mkdir()
    gt.mkdir()
    truth = np.zeros((8, 8), np.uint8)
    truth[0, 0:4] = 1  # 4 pixels
    guess = np.zeros((8, 8), np.uint8)
    guess[0, 2:6] = 1  # 2 of them: Dice 2 * 2 / (4 + 4) = 0.5
    Image.fromarray(truth).save(gt / "a.png")
    Image.fromarray(guess).save(pred / "a.png")
    Image.fromarray(truth).save(gt / "b.png")  # no prediction: a warning, not scored
    report = score_folders(pred, gt, tmp_path / "eval", classes=[1], class_names={1: "disc"})
    summary = json.loads(report.summary_path.read_text())
    assert len(report.accumulator) == 1 and summary["mean_over_classes"]["dice"] == pytest.approx(0.5)
    assert summary["unmatched"]["ground_truth_only"] == ["b"] and summary["pred_dir"] == str(pred)
    assert report.warnings == [f"1 ground-truth case(s) without a prediction in {pred}, not scored: b"]
    assert report.note is None and "disc" in report.table and report.per_case_path.is_file()
