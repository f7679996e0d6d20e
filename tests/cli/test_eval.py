"""`samtune eval --pred DIR --gt DIR` end to end on small PNG and NIfTI files."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from PIL import Image

from samtune.cli import main as cli_main
from samtune.data.geometry import Geometry
from samtune.data.readers import write_image


@pytest.fixture(autouse=True)
def _eval_registered(monkeypatch):
    """Run through the real entry point even before `eval` is listed there."""
    if "samtune.cli.eval" not in cli_main.SUBCOMMAND_MODULES:
        modules = [*cli_main.SUBCOMMAND_MODULES, "samtune.cli.eval"]
        monkeypatch.setattr(cli_main, "SUBCOMMAND_MODULES", modules)


def _eval_args(root, out="out"):
    return ["eval", "--pred", str(root / "pred"), "--gt", str(root / "gt"), "--out", str(root / out)]


def _rows(out_dir):
    with open(out_dir / "per_case.csv", newline="") as handle:
        return list(csv.DictReader(handle))


GEOMETRY = Geometry((0.8, 0.8, 3.0), (-20.0, 15.0, 7.5), tuple(np.eye(3).ravel()))


def _volumes():
    gt = np.zeros((8, 16, 16), dtype=np.uint8)
    gt[2:6, 4:10, 4:10] = 1
    gt[3:5, 12:15, 12:15] = 2
    shifted = np.zeros_like(gt)
    shifted[3:7, 4:10, 4:10] = 1  # class 1 one slice (3 mm) further; class 2 missed
    return gt, shifted


def test_nifti_folders_end_to_end_with_unmatched_names(tmp_path, capsys):
    gt, shifted = _volumes()
    pred_dir, gt_dir, out = tmp_path / "pred", tmp_path / "gt", tmp_path / "out"
    write_image(gt_dir / "case_01.nii.gz", gt, GEOMETRY)
    write_image(gt_dir / "case_02.nii.gz", gt, GEOMETRY)
    write_image(gt_dir / "case_03.nii.gz", gt, GEOMETRY)  # no prediction
    write_image(pred_dir / "case_01.nii.gz", gt, GEOMETRY)
    write_image(pred_dir / "case_02.mha", shifted, GEOMETRY)  # another format is fine
    write_image(pred_dir / "stray.nii.gz", gt, GEOMETRY)  # no ground truth
    (pred_dir / "README.txt").write_text("not an image")

    code = cli_main.main(["eval", "--pred", str(pred_dir), "--gt", str(gt_dir), "--out", str(out),
                          "--classes", "1=organ", "2=lesion", "--nsd-tolerance", "2.5"])
    captured = capsys.readouterr()
    assert code == 0
    assert "1 ground-truth case(s) without a prediction" in captured.err and "case_03" in captured.err
    assert "1 prediction(s) without a ground truth" in captured.err and "stray" in captured.err
    assert "README.txt" in captured.err
    assert "1 organ" in captured.out and "2 lesion" in captured.out and "NSD@2.5mm" in captured.out

    rows = {(r["case"], r["class"]): r for r in _rows(out)}
    assert set(rows) == {("case_01", "1"), ("case_01", "2"), ("case_02", "1"), ("case_02", "2")}
    assert float(rows["case_01", "1"]["dice"]) == 1.0 and float(rows["case_01", "2"]["hd95"]) == 0.0
    assert float(rows["case_02", "1"]["dice"]) == pytest.approx(2 * 3 * 36 / (2 * 4 * 36))  # 0.75
    assert float(rows["case_02", "1"]["hd95"]) == pytest.approx(3.0)  # one slice of 3 mm
    assert rows["case_02", "2"]["hd95"] == "inf" and float(rows["case_02", "2"]["dice"]) == 0.0

    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_cases"] == 2 and summary["distance_unit"] == "mm"
    assert summary["classes"]["2"]["name"] == "lesion"
    assert summary["classes"]["1"]["dice"]["mean"] == pytest.approx((1.0 + 0.75) / 2)
    assert summary["unmatched"]["ground_truth_only"] == ["case_03"]
    assert summary["unmatched"]["prediction_only"] == ["stray"]

    # The reports exist now: a second run must not overwrite them without --overwrite.
    args = ["eval", "--pred", str(pred_dir), "--gt", str(gt_dir), "--out", str(out)]
    assert cli_main.main(args) == 2
    assert "already exists" in capsys.readouterr().err
    assert cli_main.main([*args, "--overwrite"]) == 0


def test_png_folders_with_label_maps(tmp_path, capsys):
    # Ground truth stores the prostate zones as 254 / 255; predictions as 1 / 2.
    gt = np.zeros((20, 20), dtype=np.uint8)
    gt[2:8, 2:8] = 254
    gt[10:16, 10:16] = 255
    pred = np.where(gt == 254, 1, np.where(gt == 255, 2, 0)).astype(np.uint8)
    pred[10:16, 10:13] = 0  # half of zone 2 missed: Dice 2*18/(18+36) = 2/3
    (tmp_path / "gt").mkdir(), (tmp_path / "pred").mkdir()
    Image.fromarray(gt).save(tmp_path / "gt" / "BIDMC05_32.png")
    Image.fromarray(pred).save(tmp_path / "pred" / "BIDMC05_32.png")
    out = tmp_path / "out"
    base = ["eval", "--pred", str(tmp_path / "pred"), "--gt", str(tmp_path / "gt"), "--out", str(out)]

    assert cli_main.main([*base, "--label-map", "central=254,peripheral=255"]) == 0
    rows = {r["class"]: r for r in _rows(out)}
    assert float(rows["1"]["dice"]) == 1.0 and rows["1"]["name"] == "central"
    assert float(rows["2"]["dice"]) == pytest.approx(2 / 3) and rows["2"]["name"] == "peripheral"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["distance_unit"] == "pixel"
    assert summary["label_map"] == "central=254, peripheral=255"
    assert "HD95 (pixel)" in capsys.readouterr().out

    # Binary evaluation: both zones are one class on each side.
    binary = ["--label-map", "binary", "--pred-label-map", "binary"]
    assert cli_main.main([*base, "--overwrite", *binary]) == 0
    (row,) = _rows(out)
    assert float(row["dice"]) == pytest.approx(2 * 54 / (72 + 54))

    # A value that the map does not list is an error naming the file, never dropped.
    assert cli_main.main([*base, "--overwrite", "--label-map", "central=254"]) == 2
    err = capsys.readouterr().err
    assert "BIDMC05_32.png: label value(s) [255] not declared" in err
    assert len(err.strip().splitlines()) == 1


def test_mismatched_geometry_is_one_line_naming_both_files(tmp_path, capsys):
    gt, _ = _volumes()
    other = Geometry((0.8, 0.8, 2.0), GEOMETRY.origin, GEOMETRY.direction)
    write_image(tmp_path / "gt" / "case_01.nii.gz", gt, GEOMETRY)
    write_image(tmp_path / "pred" / "case_01.nii.gz", gt, other)
    assert cli_main.main(_eval_args(tmp_path)) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert str(tmp_path / "pred" / "case_01.nii.gz") in err
    assert str(tmp_path / "gt" / "case_01.nii.gz") in err
    assert "spacing (0.8, 0.8, 2) vs (0.8, 0.8, 3)" in err
    assert not (tmp_path / "out" / "summary.json").exists()


def test_mismatched_shape_is_an_error(tmp_path, capsys):
    (tmp_path / "gt").mkdir(), (tmp_path / "pred").mkdir()
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "gt" / "a.png")
    Image.fromarray(np.zeros((8, 9), np.uint8)).save(tmp_path / "pred" / "a.png")
    assert cli_main.main(_eval_args(tmp_path)) == 2
    err = capsys.readouterr().err
    assert "has shape (8, 9) but ground truth" in err and "a.png" in err


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--label-map", "255"], "bad label spec part '255'"),
        (["--classes", "zero"], "--classes: 'zero' is not LABEL"),
        (["--classes", "0"], "label 0 must be a positive integer"),
        (["--nsd-tolerance", "-1"], "--nsd-tolerance must be a finite number >= 0"),
    ],
)
def test_bad_flags(tmp_path, capsys, extra, message):
    args = ["eval", "--pred", str(tmp_path), "--gt", str(tmp_path), "--out", str(tmp_path / "o"), *extra]
    assert cli_main.main(args) == 2
    assert message in capsys.readouterr().err


def test_missing_pred_or_gt(tmp_path, capsys):
    assert cli_main.main(["eval", "--gt", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    assert "give both --pred DIR and --gt DIR" in capsys.readouterr().err
