"""Folder matching, label files and grid checks (through samtune.data.readers)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from samtune.data.geometry import Geometry, LoadedImage
from samtune.data.readers import write_image
from samtune.errors import DataError, UserError
from samtune.data.labels import parse_label_spec
from samtune.evaluation.folders import (
    case_name,
    check_same_grid,
    class_labels,
    evaluate_folders,
    match_folders,
)


def test_case_name_strips_double_suffixes():
    assert case_name("a/case_01.nii.gz") == "case_01"
    assert case_name("case.v2.NII.GZ") == "case.v2"
    assert case_name("slice_7.png") == "slice_7"


def test_match_reports_unmatched_and_skipped(tmp_path):
    pred, gt = tmp_path / "pred", tmp_path / "gt"
    pred.mkdir(), gt.mkdir()
    files = {
        pred: ["a.png", "b.nii.gz", "only_pred.png", "notes.txt"],
        gt: ["a.nii.gz", "b.png", "only_gt.png"],
    }
    for folder, names in files.items():
        for name in names:
            (folder / name).write_bytes(b"")
    (gt / ".hidden.png").write_bytes(b"")
    match = match_folders(pred, gt)
    assert [(name, p.name, g.name) for name, p, g in match.pairs] == [
        ("a", "a.png", "a.nii.gz"),
        ("b", "b.nii.gz", "b.png"),
    ]
    assert match.prediction_only == ["only_pred"] and match.ground_truth_only == ["only_gt"]
    assert [s.rsplit("/", 1)[-1] for s in match.skipped] == ["notes.txt"]


def test_match_errors(tmp_path):
    (tmp_path / "p").mkdir(), (tmp_path / "g").mkdir()
    (tmp_path / "p" / "x.png").write_bytes(b"")
    (tmp_path / "g" / "y.png").write_bytes(b"")
    with pytest.raises(UserError, match="no prediction"):
        match_folders(tmp_path / "p", tmp_path / "g")
    (tmp_path / "p" / "x.nii.gz").write_bytes(b"")
    with pytest.raises(UserError, match="two prediction files for case 'x'"):
        match_folders(tmp_path / "p", tmp_path / "g")
    with pytest.raises(UserError, match="not found"):
        match_folders(tmp_path / "missing", tmp_path / "g")


def test_class_labels_rules():
    geometry = Geometry.identity(2)
    stored = np.array([[0, 254], [255, 255]], dtype=np.uint8)
    mask = LoadedImage(stored, geometry, "m.png")
    zones = parse_label_spec("central=254,peripheral=255")
    assert class_labels(mask, zones).tolist() == [[0, 1], [2, 2]]
    assert class_labels(mask, parse_label_spec("gland=254+255")).tolist() == [[0, 1], [1, 1]]
    assert class_labels(mask).tolist() == stored.tolist()
    with pytest.raises(DataError, match=r"m.png: label value\(s\) \[255\] not declared"):
        class_labels(mask, parse_label_spec("central=254"))
    rgb_gray = LoadedImage(np.repeat(stored[:, :, None], 3, axis=2), geometry, "rgb.png")
    assert class_labels(rgb_gray).tolist() == stored.tolist()
    rgb = rgb_gray.array.copy()
    rgb[0, 0, 1] = 7
    with pytest.raises(DataError, match="rgb.png has 3 differing colour channels"):
        class_labels(LoadedImage(rgb, geometry, "rgb.png"))
    probabilities = LoadedImage(np.full((2, 2), 0.5, np.float32), geometry, "prob.nii.gz")
    with pytest.raises(DataError, match="prob.nii.gz: mask has fractional values"):
        class_labels(probabilities)
    assert class_labels(probabilities, parse_label_spec("binary>=0.5")).tolist() == [[1, 1], [1, 1]]
    whole = LoadedImage(np.ones((2, 2), np.float32), geometry, "f.nii")
    assert class_labels(whole).dtype == np.int64
    with pytest.raises(DataError, match="negative"):
        class_labels(LoadedImage(np.full((2, 2), -1.0, np.float32), geometry, "n.nii"))


def test_grid_check_names_both_files():
    def geometry(z_spacing):
        return Geometry((1.0, 1.0, z_spacing), (0.0,) * 3, tuple(np.eye(3).ravel()))

    a = LoadedImage(np.zeros((3, 4, 5)), geometry(2.0), "p.nii.gz")
    b = LoadedImage(np.zeros((3, 4, 5)), geometry(3.0), "g.nii.gz")
    message = r"prediction p.nii.gz and ground truth g.nii.gz differ in geometry \(spacing"
    with pytest.raises(DataError, match=message):
        check_same_grid(a, b)
    c = LoadedImage(np.zeros((3, 4, 6)), b.geometry, "g.nii.gz")
    message = r"prediction p.nii.gz has shape \(3, 4, 5\) but ground truth g.nii.gz"
    with pytest.raises(DataError, match=message):
        check_same_grid(a, c)
    check_same_grid(b, b)


def test_evaluate_folders_uses_ground_truth_spacing(tmp_path):
    pred_dir, gt_dir = tmp_path / "pred", tmp_path / "gt"
    # spacing (x, y, z) = (0.5, 0.5, 4.0) -> array spacing (z, y, x) = (4.0, 0.5, 0.5)
    geometry = Geometry((0.5, 0.5, 4.0), (10.0, -5.0, 2.0), tuple(np.eye(3).ravel()))
    gt = np.zeros((6, 8, 8), dtype=np.uint8)
    gt[1:4, 2:6, 2:6] = 1
    pred = np.zeros_like(gt)
    pred[2:5, 2:6, 2:6] = 1  # shifted one slice: 4 mm
    write_image(gt_dir / "vol.nii.gz", gt, geometry)
    write_image(pred_dir / "vol.nrrd", pred, geometry)
    Image.fromarray(gt[0]).save(gt_dir / "unpaired.png")
    accumulator, match = evaluate_folders(pred_dir, gt_dir, nsd_tolerance=3.9)
    (row,) = accumulator.per_case_rows()
    assert row["case"] == "vol" and row["dice"] == pytest.approx(2 * 32 / 96)
    assert row["hd95"] == pytest.approx(4.0) and row["nsd"] < 1.0
    assert accumulator.distance_unit == "mm"
    assert match.ground_truth_only == ["unpaired"]


def test_an_image_passed_as_labels_is_caught_unless_classes_are_named(tmp_path):
    image = np.arange(400, dtype=np.uint16).reshape(20, 20)  # 400 distinct "labels"
    write_image(tmp_path / "gt" / "scan.png", image)
    write_image(tmp_path / "pred" / "scan.png", image)
    with pytest.raises(DataError, match="scan.png holds 400 distinct values; is it an image"):
        evaluate_folders(tmp_path / "pred", tmp_path / "gt")
    accumulator, _ = evaluate_folders(tmp_path / "pred", tmp_path / "gt", classes=[7])
    assert accumulator.per_case_rows()[0]["dice"] == 1.0
