"""A study dataset with `folds: 2` (issue 18): one cell per fold, each validated on its
held-out patients, and results.md reports the mean and spread over the folds."""

from __future__ import annotations

import csv

import numpy as np
from PIL import Image
from tests.helpers.tiny_study import study_dict, write_study

from samtune.cli.main import main
from samtune.data.sources import load_source
from samtune.inference.ensemble import Ensemble
from samtune.study.preflight import load_study
from samtune.study.runner import run_study


def test_cross_validated_dataset_runs_a_cell_per_fold(disc_sources, tmp_path, keep_torch_threads):
    data = study_dict(disc_sources, components=["decoder"], methods=["full"],
                      datasets={"discs": {"train": str(disc_sources["train"]), "folds": 2}})
    out = tmp_path / "out"
    outcome = run_study(load_study(write_study(tmp_path / "cv.yaml", data)), out, log=lambda line: None,
                        isolate=False)
    cells = [f"discs__tiny_vit_test__decoder__full__seed0__fold{f}" for f in (0, 1)]
    assert outcome.ran == cells and not outcome.failed
    splits = out / "splits" / "discs" / "folds2"
    val = [{c.case_id for c in load_source(splits / f"fold{f}" / "val.csv").cases} for f in (0, 1)]
    train = [{c.case_id for c in load_source(splits / f"fold{f}" / "train.csv").cases} for f in (0, 1)]
    everything = {c.case_id for c in load_source(disc_sources["train"]).cases}
    assert val[0] | val[1] == everything and not val[0] & val[1]
    assert train[0] == val[1] and train[1] == val[0]
    with open(out / "results.csv", newline="") as handle:
        rows = {row["cell"]: row for row in csv.DictReader(handle)}
    dice = [float(rows[c]["dice_mean"]) for c in cells]
    assert all(int(rows[c]["n_cases"]) == 2 for c in cells)  # each fold scores its 2 held-out cases
    markdown = (out / "results.md").read_text(encoding="utf-8")
    assert f"| **{np.mean(dice):.3f} ± {np.std(dice):.3f}** |" in markdown  # the only row: best, bold
    assert "standard deviation over cross-validation folds" in markdown
    assert "no test source was given" in markdown

    # The folds' runs as one ensemble: a study folder plus a strategy name.
    preds = tmp_path / "preds"
    image = next((disc_sources["val"] / "images").glob("*.png"))
    assert main(["predict", str(image), "--run", str(out), "--strategy", "tiny_vit_test/decoder/full",
                 "--out", str(preds)]) == 0
    with open(preds / "qc.csv", newline="") as handle:
        (row,) = list(csv.DictReader(handle))
    assert row["variants"] == "2"
    expected = Ensemble.from_runs([out / "runs" / c for c in cells]).predict_image(np.asarray(Image.open(image)))
    assert np.array_equal(np.asarray(Image.open(preds / image.name)), expected)
