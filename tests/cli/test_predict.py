"""`samtune predict` end to end: images, volumes, DICOM series, prompts, outputs, errors."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import SimpleITK as sitk
from tests.helpers.generated_data import write_dicom_series
from PIL import Image

from samtune.cli.main import main
from samtune.data.geometry import Geometry
from samtune.data.readers import read_image, write_image
from samtune.inference.predictor import Predictor
from samtune.runs.reading import RunDir
from tests.helpers.threshold_model import BoxThresholdModel, dice, threshold_segmenter

pytestmark = pytest.mark.usefixtures("one_thread")

GEOMETRY = Geometry((0.7, 0.8, 2.5), (-30.0, 12.5, 40.0), (1.0, 0.0, 0.0, 0.0, 0.0, -1.0, 0.0, 1.0, 0.0))


def disc_volume(depth=5, size=48):
    yy, xx = np.mgrid[:size, :size]
    volume = np.full((depth, size, size), 50, dtype=np.int16)
    for z in range(depth):
        volume[z][(yy - 24) ** 2 + (xx - 20) ** 2 <= (6 + 2 * z) ** 2] = 200
    return volume


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, automatic_run):
    root = tmp_path_factory.mktemp("inputs")
    val = automatic_run.parent / "val" / "images"
    (root / "slice.png").write_bytes((val / "case00.png").read_bytes())
    write_image(root / "brain.nii.gz", disc_volume(), GEOMETRY)
    write_dicom_series(root / "series", disc_volume(depth=4))
    return root



def test_automatic_run_writes_labels_with_geometry_and_pictures(automatic_run, inputs, tmp_path, capsys,
                                                                monkeypatch):
    # The run's model answers like a model that segments the bright discs (the tiny run itself
    # predicts background everywhere): labels must land on the discs of every input.
    monkeypatch.setattr(RunDir, "load_model", lambda run, device="cpu": threshold_segmenter(64))
    out = tmp_path / "out"
    args = ["predict", str(inputs / "slice.png"), str(inputs / "brain.nii.gz"), str(inputs / "series"),
            "--run", str(automatic_run), "--out", str(out), "--overlay", "--batch-size", "2"]
    assert main(args) == 0
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.*")) == [
        "brain.nii.gz", "overlays/brain_montage.png", "overlays/series_montage.png", "overlays/slice_overlay.png",
        "series.nii.gz", "slice.png"]
    predictor = Predictor.from_run(automatic_run)
    png = np.asarray(Image.open(out / "slice.png"))
    np.testing.assert_array_equal(png, predictor.predict_image(np.asarray(Image.open(inputs / "slice.png"))))
    written, source = read_image(out / "brain.nii.gz"), read_image(inputs / "brain.nii.gz")
    assert written.array.shape == source.array.shape and written.array.dtype == np.uint8
    assert written.geometry.close_to(source.geometry) and written.geometry.close_to(GEOMETRY)
    np.testing.assert_array_equal(written.array, predictor.predict_volume(source).array)
    dicom = read_image(inputs / "series")
    series = read_image(out / "series.nii.gz")
    assert series.array.shape == (4, 48, 48) and series.geometry.close_to(dicom.geometry)
    truth = read_image(automatic_run.parent / "val" / "masks" / "case00.png", role="mask").array > 0
    scores = (dice(png, truth), dice(written.array, source.array == 200), dice(series.array, dicom.array == 200))
    # measured 2026-12-01: Dice 1.0 on all three (197 pixels, 1681 and 1068 voxels of disc)
    assert min(scores) > 0.99 and (png.sum(), written.array.sum(), series.array.sum()) == (197, 1681, 1068)
    assert np.asarray(Image.open(out / "overlays" / "brain_montage.png")).shape[2] == 3
    printed = capsys.readouterr().out
    assert "5 slices" in printed and "3 input(s) predicted" in printed

    # The README's flow: eval on the predict folder sees the label files only (issue 12, item 10).
    gt = tmp_path / "gt"
    gt.mkdir()
    Image.fromarray(png).save(gt / "slice.png")
    assert main(["eval", "--pred", str(out), "--gt", str(gt), "--out", str(tmp_path / "eval")]) == 0
    captured = capsys.readouterr()
    assert "overlay" not in captured.err and "skipped" not in captured.err
    assert "1 cases scored" in captured.out

    # existing outputs are refused before anything is predicted; --overwrite replaces them
    before = (out / "slice.png").stat().st_mtime_ns
    assert main(args) == 2
    assert "already exists; pass --overwrite" in capsys.readouterr().err
    assert (out / "slice.png").stat().st_mtime_ns == before
    assert main(["predict", str(inputs / "slice.png"), "--run", str(automatic_run), "--out", str(out),
                 "--overwrite"]) == 0
    assert (out / "slice.png").stat().st_mtime_ns > before


def test_zero_shot_model_with_box_and_prompts_file(automatic_run, inputs, tiny_checkpoint, tmp_path, capsys,
                                                   monkeypatch):
    # The registered model answers like one that segments what is bright inside the box, so
    # the labels written can be checked against the discs (a random tiny model's cannot).
    build = Predictor.from_model.__func__
    monkeypatch.setattr(Predictor, "from_model", classmethod(
        lambda cls, *args, **kwargs: replace(build(cls, *args, **kwargs), model=BoxThresholdModel(64))))
    out = tmp_path / "out"
    prompts = tmp_path / "prompts.json"
    prompts.write_text(json.dumps({"brain": {"box": [8, 10, 34, 40], "slice": 2},
                                   "typo.png": {"box": [1, 1, 5, 5]}}))
    code = main(["predict", str(inputs / "slice.png"), str(inputs / "brain.nii.gz"), "--model", "tiny_vit_test",
                 "--checkpoint", str(tiny_checkpoint), "--box", "5", "5", "40", "40", "--prompts", str(prompts),
                 "--out", str(out)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "entry 'typo.png' matches no input" in captured.err
    assert "propagated from slice 2" in captured.out
    labels = read_image(out / "brain.nii.gz")
    assert labels.array.shape == (5, 48, 48) and set(np.unique(labels.array)) <= {0, 1}
    assert labels.geometry.close_to(GEOMETRY)
    png = np.asarray(Image.open(out / "slice.png"))
    assert set(np.unique(png)) <= {0, 1}
    truth = read_image(automatic_run.parent / "val" / "masks" / "case00.png", role="mask").array
    in_box = np.zeros(truth.shape, dtype=bool)
    in_box[5:41, 5:41] = True  # --box 5 5 40 40, inclusive
    # measured 2026-12-01: the 75 disc pixels inside the box; every propagated slice's disc (Dice 1.0)
    assert dice(png, (truth > 0) & in_box) > 0.95 and png.sum() == 75
    assert min(dice(labels.array[z], disc_volume()[z] == 200) for z in range(5)) > 0.99


def _error(capsys, args):
    code = main(args)
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1, err
    return err


def test_bad_inputs_are_one_line_errors(automatic_run, inputs, tiny_checkpoint, tmp_path, capsys):
    out = ["--out", str(tmp_path / "out")]
    model = ["--model", "tiny_vit_test", "--checkpoint", str(tiny_checkpoint)]
    run = ["--run", str(automatic_run)]
    (tmp_path / "scan.xyz").write_bytes(b"1234")
    assert "unsupported file type '.xyz'" in _error(capsys, ["predict", str(tmp_path / "scan.xyz"), *run, *out])
    assert "input not found" in _error(capsys, ["predict", str(tmp_path / "none.png"), *run, *out])
    four_d = sitk.JoinSeries([sitk.GetImageFromArray(disc_volume(depth=2).astype(np.float32))] * 3)
    sitk.WriteImage(four_d, str(tmp_path / "time.nii.gz"))
    assert "is a 4D image" in _error(capsys, ["predict", str(tmp_path / "time.nii.gz"), *run, *out])
    png = str(inputs / "slice.png")
    assert "is not inside the 64x64 image" in _error(capsys, ["predict", png, *model, "--box", "0", "0", "70", "9", *out])
    assert "point (64, 3) is outside" in _error(capsys, ["predict", png, *model, "--point", "64", "3", *out])
    assert "needs a prompt" in _error(capsys, ["predict", png, *model, *out])
    assert "segments automatically" in _error(capsys, ["predict", png, *run, "--box", "1", "1", "9", "9", *out])
    volume = str(inputs / "brain.nii.gz")
    assert "--slice K" in _error(capsys, ["predict", volume, *model, "--box", "1", "1", "9", "9", *out])
    assert "slice 9 is outside" in _error(capsys, ["predict", volume, *model, "--box", "1", "1", "9", "9",
                                                    "--slice", "9", *out])
    assert "a slice index applies to volumes only" in _error(
        capsys, ["predict", png, *model, "--box", "1", "1", "9", "9", "--slice", "1", *out])
    assert "would both write 'slice'" in _error(capsys, ["predict", png, png, *run, *out])
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
