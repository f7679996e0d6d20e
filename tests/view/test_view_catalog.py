"""What `samtune view PATH` finds: eval folders written by `samtune eval --run`, a run holding eval/,
predict folders with their inputs, single files."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from samtune.cli.main import main
from samtune.errors import UserError
from samtune.inference.predictor import Predictor
from samtune.view.catalog import build_catalog


@pytest.fixture
def run_with_eval(prompted_run, tmp_path):
    """A copy of the tiny prompted run with eval/ written by `samtune eval --run` on its own val data."""
    run = tmp_path / "run"
    shutil.copytree(prompted_run, run)
    assert main(["eval", "--run", str(run), "--out", str(run / "eval")]) == 0
    return run


def test_eval_of_a_run_lists_its_data_and_prompts_with_the_run(run_with_eval, make_client):
    from starlette.testclient import TestClient

    from samtune.view import build_app, open_view

    state = open_view(run_with_eval, corrections=run_with_eval.parent / "fixes")
    assert state.catalog.kind == "eval" and state.catalog.run == run_with_eval.resolve()
    assert state.prompts.description == "run run"
    assert sorted(state.catalog.cases) == ["case00", "case01"]
    case = state.catalog.cases["case00"]
    assert case.gt is not None and case.pred is None and case.metrics["dice"] is not None
    client = TestClient(build_app(state), base_url="http://127.0.0.1")
    box = [10.0, 10.0, 50.0, 50.0]
    response = client.post("/api/cases/case00/prompt", json={"axis": 0, "index": 0, "box": box})
    mask = np.frombuffer(response.content, np.uint8).reshape(64, 64)
    image = state.store.get("case00").image.array
    np.testing.assert_array_equal(mask, Predictor.from_run(run_with_eval).predict_image(image, box=box))


def test_predict_folder_with_inputs_and_single_files(view_data):
    root = view_data["root"]
    catalog = build_catalog(root / "preds", images=root / "images", gt=root / "labels")
    assert catalog.kind == "predict" and sorted(catalog.cases) == ["photo", "vol"]
    assert catalog.cases["vol"].pred == root / "preds" / "vol.nii.gz"
    assert catalog.cases["vol"].gt == root / "labels" / "vol.nii.gz" and not catalog.cases["vol"].metrics
    images_only = build_catalog(root / "images")
    assert images_only.kind == "images" and images_only.cases["vol"].pred is None
    single = build_catalog(root / "images" / "vol.nii.gz", gt=root / "labels" / "vol.nii.gz")
    assert single.kind == "file" and list(single.cases) == ["vol"] and single.cases["vol"].gt is not None
    with pytest.raises(UserError, match="not an image"):
        build_catalog(root / "eval" / "per_case.csv")


def test_a_study_folder_needs_a_cell(run_with_eval, tmp_path):
    study = tmp_path / "study"
    (study / "runs").mkdir(parents=True)
    shutil.move(str(run_with_eval), study / "runs" / "disc__tiny__decoder__full__seed0")
    with pytest.raises(UserError, match="choose a cell with --cell ID .one of: disc__tiny__decoder__full__seed0"):
        build_catalog(study)
    with pytest.raises(UserError, match="--cell nope is not a scored cell"):
        build_catalog(study, cell="nope")
    catalog = build_catalog(study, cell="disc__tiny__decoder__full__seed0")
    assert catalog.kind == "eval" and sorted(catalog.cases) == ["case00", "case01"]
    with pytest.raises(UserError, match="--cell chooses a cell of a study folder"):
        build_catalog(tmp_path / "study" / "runs" / "disc__tiny__decoder__full__seed0", cell="x")


def test_nnunet_channel_names_and_unmatched_predictions(view_data, tmp_path):
    root = view_data["root"]
    images, preds = tmp_path / "imagesTs", tmp_path / "preds"
    images.mkdir()
    preds.mkdir()
    shutil.copy(root / "images" / "photo.png", images / "photo_0000.png")   # nnU-Net first channel
    shutil.copy(root / "images" / "photo.png", images / "patient_0001.png")  # a case name that only looks like one
    shutil.copy(root / "preds" / "photo.png", preds / "photo.png")
    shutil.copy(root / "preds" / "photo.png", preds / "ghost.png")            # no image for it
    shutil.copy(root / "images" / "photo.png", preds / "photo_overlay.png")   # predict's own picture
    catalog = build_catalog(preds, images=images)
    assert list(catalog.cases) == ["photo"] and catalog.cases["photo"].image == images / "photo_0000.png"
    assert catalog.unmatched == ["ghost"]
    assert sorted(build_catalog(images).cases) == ["patient_0001", "photo_0000"]


def test_eval_folder_with_relative_paths_opens_from_anywhere(view_data, tmp_path, monkeypatch):
    project = tmp_path / "project"
    for name in ("images", "labels", "preds"):
        shutil.copytree(view_data["root"] / name, project / name)
    monkeypatch.chdir(project)
    assert main(["eval", "--pred", "preds", "--gt", "labels", "--out", "eval", "--label-map", "binary",
                 "--pred-label-map", "binary"]) == 0
    monkeypatch.chdir(tmp_path)
    catalog = build_catalog(project / "eval")
    assert sorted(catalog.cases) == ["photo", "vol"]
    assert catalog.cases["vol"].image == project / "images" / "vol.nii.gz"  # found beside labels/
    assert catalog.cases["vol"].metrics["dice"] < catalog.cases["photo"].metrics["dice"] == 1.0
