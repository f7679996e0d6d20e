"""`evaluate_run`: a run's predictions on a labelled source, scored per case and class."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from PIL import Image

from samtune.data.geometry import Geometry
from samtune.data.readers import read_image, write_image
from samtune.errors import UserError
from samtune.evaluation.metrics import binary_metrics
from samtune.inference.predictor import Predictor
from samtune.inference.run_eval import evaluate_run, predict_from_ground_truth

GEOMETRY = Geometry((0.8, 0.8, 3.0), (5.0, -7.0, 11.0), tuple(np.eye(3).ravel()))


def rows_of(out_dir):
    with open(out_dir / "per_case.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def write_volume_source(root, run_dir):
    """images/ + masks/ with one NIfTI volume: the run's validation PNGs stacked, plus 2
    empty slices (which evaluation must keep)."""
    val = run_dir.parent / "val"
    names = sorted(p.name for p in (val / "images").iterdir())
    image = np.stack([np.asarray(Image.open(val / "images" / n)) for n in names] + [np.full((64, 64), 60, np.uint8)] * 2)
    mask = np.stack([np.asarray(Image.open(val / "masks" / n)) for n in names] + [np.zeros((64, 64), np.uint8)] * 2)
    write_image(root / "images" / "vol.nii.gz", image.astype(np.int16), GEOMETRY)
    write_image(root / "masks" / "vol.nii.gz", mask, GEOMETRY)
    return root


def test_automatic_run_on_its_validation_pngs(automatic_run, tmp_path):
    result = evaluate_run(automatic_run, tmp_path / "eval")
    rows = rows_of(tmp_path / "eval")
    assert [(r["case"], r["class"], r["name"]) for r in rows] == [("case00", "1", "foreground"), ("case01", "1", "foreground")]
    predictor = Predictor.from_run(automatic_run)
    val = automatic_run.parent / "val"
    for row in rows:
        image = np.asarray(Image.open(val / "images" / f"{row['case']}.png"))
        gt = np.asarray(Image.open(val / "masks" / f"{row['case']}.png")) > 0
        expected = binary_metrics(predictor.predict_image(image) == 1, gt)
        assert float(row["dice"]) == pytest.approx(expected.dice)
        assert int(row["gt_voxels"]) == gt.sum()
    summary = json.loads((tmp_path / "eval" / "summary.json").read_text())
    assert summary["n_cases"] == 2 and summary["distance_unit"] == "pixel"
    assert summary["mode"] == "automatic" and "the run's data.val" in summary["data"] and summary["prompts"] is None
    assert "foreground" in result.table
    with pytest.raises(UserError, match="already exists"):
        evaluate_run(automatic_run, tmp_path / "eval")


def test_volume_cases_are_predicted_whole(automatic_run, tmp_path):
    source = write_volume_source(tmp_path / "vols", automatic_run)
    evaluate_run(automatic_run, tmp_path / "eval", data=source, batch_size=3)
    (row,) = rows_of(tmp_path / "eval")
    mask = read_image(source / "masks" / "vol.nii.gz").array
    volume = read_image(source / "images" / "vol.nii.gz")
    predicted = Predictor.from_run(automatic_run).predict_volume(volume).array
    assert int(row["gt_voxels"]) == int((mask > 0).sum())
    assert int(row["pred_voxels"]) == int((predicted == 1).sum())  # all 4 slices, empty ones too
    assert json.loads((tmp_path / "eval" / "summary.json").read_text())["distance_unit"] == "mm"


def test_prompted_run_is_prompted_from_the_ground_truth(prompted_run, tmp_path):
    evaluate_run(prompted_run, tmp_path / "eval")
    rows = rows_of(tmp_path / "eval")
    predictor = Predictor.from_run(prompted_run)
    val = prompted_run.parent / "val"
    for row in rows:
        image = np.asarray(Image.open(val / "images" / f"{row['case']}.png"))
        gt = np.asarray(Image.open(val / "masks" / f"{row['case']}.png")) > 0
        rows_idx, cols_idx = np.nonzero(gt)
        tight = (cols_idx.min(), rows_idx.min(), cols_idx.max(), rows_idx.max())
        assert int(row["pred_voxels"]) == int(predictor.predict_image(image, box=tight).sum())
    summary = json.loads((tmp_path / "eval" / "summary.json").read_text())
    assert summary["mode"] == "prompted" and summary["prompts"].startswith("ground truth (box)")


def test_ground_truth_prompts_per_slice_and_class(prompted_run):
    predictor = Predictor.from_run(prompted_run)
    rng = np.random.default_rng(0)
    volume = rng.normal(60, 10, (4, 32, 32))
    classes = np.zeros((4, 32, 32), dtype=np.uint8)
    classes[1, 4:12, 4:12] = 1
    classes[1, 20:28, 18:30] = 2
    classes[2, 10:20, 10:20] = 2
    volume[classes > 0] += 100
    from samtune.data.geometry import LoadedImage

    labels = predict_from_ground_truth(predictor, LoadedImage(volume, Geometry.identity(3)), classes, batch_size=2)
    assert labels.shape == classes.shape
    assert not labels[0].any() and not labels[3].any()  # no ground truth, no prompt
    assert set(np.unique(labels[2])) <= {0, 2}  # only the class present is prompted


def test_split_folder_lists(automatic_run, tmp_path):
    from samtune.data.sources import load_source
    from samtune.data.split import split_cases, write_split

    source = load_source(automatic_run.parent / "train")
    write_split(split_cases(source, shots=1, seed=0), tmp_path / "split", source)
    evaluate_run(automatic_run, tmp_path / "val_eval", data=tmp_path / "split")
    evaluate_run(automatic_run, tmp_path / "train_eval", data=tmp_path / "split", split="train")
    assert len(rows_of(tmp_path / "val_eval")) == 3 and len(rows_of(tmp_path / "train_eval")) == 1


def test_source_choice_errors(automatic_run, tmp_path):
    with pytest.raises(UserError, match="applies to a split folder"):
        evaluate_run(automatic_run, tmp_path / "a", data=automatic_run.parent / "val", split="val")
    with pytest.raises(UserError, match="predicts 1 class"):
        evaluate_run(automatic_run, tmp_path / "b", label_spec="a=1,b=2")
    with pytest.raises(UserError, match="--classes"):
        evaluate_run(automatic_run, tmp_path / "c", classes=[2])
