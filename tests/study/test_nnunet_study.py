"""nnU-Net v2 as a study engine (issue 15): its cells, commands, status, and the scoring of
its prediction files by samtune's evaluation (hand-computed Dice). nnU-Net's real
training is in benchmarks/nnunet_step.py (BENCHMARKS.md): one epoch is far over this
suite's budget on a CPU."""

import csv
import json
import sys
from dataclasses import asdict

import numpy as np
import pytest
import SimpleITK as sitk
from PIL import Image
from tests.helpers.tiny_study import study_dict, write_study

from samtune.study.preflight import load_study
from samtune.study.grid import expand_cells
from samtune.study.state import cell_status, run_dir

pytest.importorskip("nnunetv2")

NNUNET = {"engine": "nnunetv2", "configuration": "2d", "trainer": "nnUNetTrainer_1epoch", "fold": "all"}


def _study(disc_sources, tmp_path, **changes):
    data = study_dict(disc_sources, backbones={"tiny_vit_test": {}, "nnunet": NNUNET}, components=["decoder"],
                      methods=["full"], **changes)
    return load_study(write_study(tmp_path / "study.yaml", data))


def test_an_nnunet_backbone_gives_one_cell_per_dataset_shots_and_seed(disc_sources, tmp_path):
    config = _study(disc_sources, tmp_path, seeds=[0, 1], shots=[1, None])
    cells = [c for c in expand_cells(config, tmp_path / "out") if c.engine]
    assert [c.cell_id for c in cells] == [
        "discs__nnunet__encoder_decoder__full__seed0__shots1", "discs__nnunet__encoder_decoder__full__seed0",
        "discs__nnunet__encoder_decoder__full__seed1__shots1", "discs__nnunet__encoder_decoder__full__seed1"]
    assert {c.strategy for c in cells} == {"nnU-Net 2d (nnUNetTrainer_1epoch, fold all)"}
    # one dataset id per training source: the two few-shot splits and the whole source (shared by both seeds)
    ids = [(c.engine["dataset_id"], c.engine["dataset_name"]) for c in cells]
    assert ids == [(1, "discs-shots1-seed0"), (2, "discs"), (3, "discs-shots1-seed1"), (2, "discs")]
    assert cells[0].engine["train_source"] == str(tmp_path / "out" / "splits" / "discs" / "shots1_seed0" / "train.csv")
    assert cells[1].engine["train_source"] == str(disc_sources["train"])
    assert all(c.engine["score_source"] == str(disc_sources["val"]) and c.engine["score_key"] == "discs-val"
               for c in cells)


def test_the_commands_run_nnunets_python_api_with_resume_and_fold(tmp_path):
    from samtune.study.nnunet_engine import NnunetFolders, fold_folder, predict_command, train_command

    launcher = [sys.executable, "-m", "samtune.study.nnunet_launch"]
    assert train_command(3, "2d", "all", "nnUNetTrainer_5epochs") == [
        *launcher, "train", "3", "2d", "all", "nnUNetTrainer_5epochs", "cpu"]
    assert train_command(3, "2d", 0, "nnUNetTrainer", resume=True)[-2:] == ["cpu", "--c"]
    assert predict_command(tmp_path / "in", tmp_path / "out", 3, "2d", 1, "nnUNetTrainer")[len(launcher):] == [
        "predict", str(tmp_path / "in"), str(tmp_path / "out"), "3", "2d", "1", "nnUNetTrainer", "cpu"]
    folders = NnunetFolders.inside(tmp_path)
    assert folders.environment()["nnUNet_preprocessed"] == str(tmp_path / "nnUNet_preprocessed")
    assert fold_folder(folders, "Dataset003_X", "2d", "all", "nnUNetTrainer") == (
        tmp_path / "nnUNet_results" / "Dataset003_X" / "nnUNetTrainer__nnUNetPlans__2d" / "fold_all")


def test_an_nnunet_cell_moves_through_its_states_by_its_files(disc_sources, tmp_path):
    config = _study(disc_sources, tmp_path)
    out = tmp_path / "out"
    (cell,) = [c for c in expand_cells(config, out) if c.engine]
    directory = run_dir(out, cell)
    assert cell_status(out, cell) == ("new", [])
    directory.mkdir(parents=True)
    (directory / "nnunet.json").write_text(json.dumps(cell.engine))
    assert cell_status(out, cell) == ("resume", [])  # nnU-Net continues with --c
    (directory / "summary.json").write_text("{}")
    assert cell_status(out, cell) == ("score", [])
    (directory / "eval").mkdir()
    (directory / "eval" / "summary.json").write_text("{}")
    assert cell_status(out, cell) == ("done", [])
    (directory / "nnunet.json").write_text(json.dumps({**cell.engine, "trainer": "nnUNetTrainer_5epochs"}))
    status, differences = cell_status(out, cell)
    assert status == "stale" and differences == ["trainer: 'nnUNetTrainer_5epochs' -> 'nnUNetTrainer_1epoch'"]


def _write_prediction(labels: np.ndarray, path):
    image = sitk.GetImageFromArray(labels.astype(np.uint8))
    sitk.WriteImage(image, str(path), useCompression=True)


def test_nnunet_predictions_are_scored_by_samtunes_evaluation_into_the_results_row(disc_sources, tmp_path,
                                                                                   monkeypatch):
    from samtune.study.nnunet_cell import nnunet_score, score_predictions
    from samtune.study.nnunet_study import NnunetCell
    from samtune.study.results import cell_row

    config = _study(disc_sources, tmp_path)
    out = tmp_path / "out"
    (cell,) = [c for c in expand_cells(config, out) if c.engine]
    settings = NnunetCell(**cell.engine)
    directory = run_dir(out, cell)
    predictions = directory / "predictions"
    predictions.mkdir(parents=True)
    masks = {p.stem: np.asarray(Image.open(p)) > 0 for p in sorted((disc_sources["val"] / "masks").glob("*.png"))}
    assert list(masks) == ["case00", "case01"]
    shifted = np.roll(masks["case00"], 3, axis=1)  # nnU-Net-format files: one shifted disc, one exact
    _write_prediction(shifted, predictions / "case00.nii.gz")
    _write_prediction(masks["case01"], predictions / "case01.nii.gz")
    expected = 2 * (shifted & masks["case00"]).sum() / (shifted.sum() + masks["case00"].sum())
    assert 0.6 < expected < 0.95

    accumulator = score_predictions(settings, predictions, tmp_path / "eval", asdict(config.score))
    with open(tmp_path / "eval" / "per_case.csv", newline="") as handle:
        dice = {row["case"]: float(row["dice"]) for row in csv.DictReader(handle)}
    assert dice == pytest.approx({"case00": expected, "case01": 1.0}, abs=1e-6)
    assert accumulator.summary()["mean_over_classes"]["dice"] == pytest.approx((expected + 1) / 2, abs=1e-6)

    # the cell's own scoring step, with nnU-Net's prediction already written (it resumes, skipping both cases)
    (directory / "nnunet.json").write_text(json.dumps(cell.engine))
    (directory / "summary.json").write_text(json.dumps({"engine": "nnunetv2", "train_seconds": 12.5, "steps": 250}))
    job = {"engine": cell.engine, "run_dir": str(directory), "out_dir": str(out), "action": "score",
           "score": asdict(config.score), "eval_dir": "eval"}
    import samtune.study.nnunet_cell as nnunet_cell

    commands = []  # the prediction command is recorded, not run: the predictions are already there
    monkeypatch.setattr(nnunet_cell, "run_command", lambda command, folders, log, what: commands.append((command, folders)))
    nnunet_score(job)
    ((command, folders),) = commands
    inputs = out / "nnunet" / "inputs" / "discs-val"
    assert command[3:6] == ["predict", str(inputs), str(predictions)]
    assert sorted(p.name for p in inputs.glob("*.nii.gz")) == ["case00_0000.nii.gz", "case01_0000.nii.gz"]
    exported = sitk.GetArrayFromImage(sitk.ReadImage(str(inputs / "case00_0000.nii.gz")))
    assert np.array_equal(exported, np.asarray(Image.open(disc_sources["val"] / "images" / "case00.png")))
    assert folders.results == directory / "nnUNet_results"
    row = cell_row(out, cell)
    assert row["status"] == "done" and row["strategy"] == "nnU-Net 2d (nnUNetTrainer_1epoch, fold all)"
    assert row["dice_mean"] == pytest.approx((expected + 1) / 2, abs=1e-6) and row["train_seconds"] == 12.5


def test_nnunet_checkpoints_with_numpy_scalars_load_weights_only(tmp_path):
    """nnU-Net 2.8.1 saves its logged pseudo-Dice as numpy scalars in checkpoint_final.pth
    (a real one-epoch run failed at prediction on this); they load with weights_only, and
    arbitrary objects still do not."""
    import pickle

    import torch

    from samtune.study.nnunet_cell import _checkpoint_summary
    from samtune.study.nnunet_engine import load_checkpoint

    weights = {"encoder.conv.weight": torch.ones(2, 3), "decoder.encoder.conv.weight": torch.ones(2, 3)}
    weights["decoder.encoder.conv.weight"] = weights["encoder.conv.weight"]  # nnU-Net shares its encoder
    checkpoint = {"network_weights": weights, "current_epoch": 1, "_best_ema": np.float32(0.7858),
                  "logging": {"dice_per_class_or_region": [[np.float32(0.7858)]], "epoch_end_timestamps": [1.5]},
                  "inference_allowed_mirroring_axes": (0, 1)}
    path = tmp_path / "checkpoint_final.pth"
    torch.save(checkpoint, path)
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path, map_location="cpu", weights_only=True)  # what the engine did before
    loaded = load_checkpoint(path)
    assert loaded["_best_ema"] == pytest.approx(0.7858) and loaded["current_epoch"] == 1
    assert torch.equal(loaded["network_weights"]["encoder.conv.weight"], torch.ones(2, 3))
    assert _checkpoint_summary(path) == {"trainable_parameters": 6, "total_parameters": 6, "steps": 250,
                                         "best_val_dice": pytest.approx(0.7858, abs=1e-6)}

    import argparse

    torch.save({"network_weights": weights, "extra": argparse.Namespace(code=1)}, tmp_path / "unsafe.pth")
    with pytest.raises(pickle.UnpicklingError):
        load_checkpoint(tmp_path / "unsafe.pth")
