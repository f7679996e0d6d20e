"""`samtune eval --pred --gt` with differently encoded label values (issue 12, item 1).

Real MRI-Prostate masks hold 0/254/255; predictions hold 0/1 (samtune's class values).
Scoring value by value would compare different structures, so eval refuses with the
flags that fix the call, or applies a printed binary rule when both sides are plain
binary masks.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from samtune.cli.main import main

MASKS = Path(__file__).parents[2].parent / "shared/data/MRI-Prostate/masks"
CASES = ["BMC26_16", "RUNMC03_16", "UCL34_9"]  # 0/254/255, 0/254 and 0/255


def _write(folder: Path, name: str, array: np.ndarray) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array.astype(np.uint8)).save(folder / f"{name}.png")


@pytest.fixture
def prostate(tmp_path):
    """gt/: the real masks; pred/: the same glands as 0/1 masks (a perfect prediction)."""
    for name in CASES:
        truth = np.asarray(Image.open(MASKS / f"{name}.png"))
        _write(tmp_path / "gt", name, truth)
        _write(tmp_path / "pred", name, truth > 0)
    return tmp_path


def test_binary_prediction_against_two_zone_truth_is_refused_with_the_fix(prostate, refused):
    message = refused(
        ["eval", "--pred", prostate / "pred", "--gt", prostate / "gt", "--out", prostate / "out"],
        watch=[prostate], names=["0/1", "0/254/255", "--label-map binary --pred-label-map binary"],
    )
    assert str(prostate / "pred") in message and str(prostate / "gt") in message
    # The line it gives works and scores the perfect prediction as perfect.
    code = main(["eval", "--pred", str(prostate / "pred"), "--gt", str(prostate / "gt"),
                 "--out", str(prostate / "out"), "--label-map", "binary", "--pred-label-map", "binary"])
    assert code == 0
    summary = json.loads((prostate / "out" / "summary.json").read_text())
    assert summary["n_cases"] == 3 and summary["classes"]["1"]["dice"]["mean"] == 1.0


def test_zone_prediction_gets_the_pairwise_map(tmp_path, refused, capsys):
    """Predictions 0/1/2 for zones stored as 254/255: the message names the pairs."""
    for name in CASES:
        truth = np.asarray(Image.open(MASKS / f"{name}.png"))
        _write(tmp_path / "gt", name, truth)
        _write(tmp_path / "pred", name, np.select([truth == 254, truth == 255], [1, 2], 0))
    pairs = "--label-map c1=254,c2=255 --pred-label-map c1=1,c2=2"
    message = refused(["eval", "--pred", tmp_path / "pred", "--gt", tmp_path / "gt", "--out", tmp_path / "out"],
                      watch=[tmp_path], names=[pairs])
    assert "0/1/2" in message
    assert main(["eval", "--pred", str(tmp_path / "pred"), "--gt", str(tmp_path / "gt"),
                 "--out", str(tmp_path / "out"), *pairs.split()]) == 0
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert {k: v["dice"]["mean"] for k, v in summary["classes"].items()} == {"1": 1.0, "2": 1.0}


def test_two_plain_binary_masks_get_a_printed_rule(tmp_path, capsys):
    """0/255 (an image editor's mask) against 0/1: scored as binary, said and recorded."""
    truth = np.zeros((8, 8), np.uint8)
    truth[2:6, 2:6] = 1  # 16 pixels
    pred = np.zeros((8, 8), np.uint8)
    pred[2:6, 2:4] = 255  # 8 pixels, all inside: Dice 2*8/(16+8) = 2/3
    _write(tmp_path / "gt", "a", truth)
    _write(tmp_path / "pred", "a", pred)
    code = main(["eval", "--pred", str(tmp_path / "pred"), "--gt", str(tmp_path / "gt"), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 0
    assert "predictions hold 0/255 and ground truth holds 0/1: both scored as binary masks" in err
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["classes"]["1"]["dice"]["mean"] == pytest.approx(2 / 3)
    assert "both scored as binary masks" in summary["label_rule"]


def test_a_class_never_predicted_needs_explicit_classes(tmp_path, refused):
    truth = np.zeros((8, 8), np.uint8)
    truth[1:3, 1:3], truth[5:7, 5:7] = 1, 2
    pred = np.where(truth == 1, 1, 0)  # class 2 missed
    _write(tmp_path / "gt", "a", truth)
    _write(tmp_path / "pred", "a", pred)
    args = ["eval", "--pred", tmp_path / "pred", "--gt", tmp_path / "gt", "--out", tmp_path / "out"]
    refused(args, watch=[tmp_path], names=["--classes 1 2"])
    assert main([str(a) for a in args] + ["--classes", "1", "2"]) == 0
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["classes"]["1"]["dice"]["mean"] == 1.0 and summary["classes"]["2"]["dice"]["mean"] == 0.0


def test_a_side_without_foreground_is_accepted():
    from samtune.evaluation.label_sets import agree_label_sets

    for pred, gt in (({255}, set()), (set(), {254, 255})):
        agreement = agree_label_sets(pred, gt, None, None, None, Path("p"), Path("g"))
        assert agreement.rule is None and agreement.label_map is None
