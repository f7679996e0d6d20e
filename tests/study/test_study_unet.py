"""A study with the U-Net baseline beside a SAM strategy (issue 15): one U-Net cell, its row
reads "U-Net (scratch)" and holds a real Dice."""

import csv

import pytest
from tests.helpers.tiny_study import study_dict, write_study

from samtune.errors import ConfigError
from samtune.study.preflight import load_study
from samtune.study.grid import expand_cells
from samtune.study.runner import run_study

UNET_TRAIN = ["optim.steps=40", "optim.lr=0.01", "optim.batch_size=2", "eval.every=20", "run.checkpoint_every=40"]


def test_unet_cell_row_has_a_real_dice(disc_sources, tmp_path, keep_torch_threads):
    data = study_dict(disc_sources, backbones={"tiny_vit_test": {}, "unet_test": {"overrides": UNET_TRAIN}},
                      components=["decoder", "encoder+decoder"], methods=["full"])
    config = load_study(write_study(tmp_path / "study.yaml", data))
    cells = expand_cells(config, tmp_path / "out")
    # the SAM backbone gets the 2 x 1 strategy grid, the U-Net one cell whatever the grid
    assert [c.cell_id for c in cells] == ["discs__tiny_vit_test__decoder__full__seed0",
                                          "discs__tiny_vit_test__encoder_decoder__full__seed0",
                                          "discs__unet_test__encoder_decoder__full__seed0"]
    outcome = run_study(config, tmp_path / "out", isolate=False, log=lambda line: None)
    assert not outcome.failed
    with open(tmp_path / "out" / "results.csv", newline="") as handle:
        rows = {row["cell"]: row for row in csv.DictReader(handle)}
    unet = rows["discs__unet_test__encoder_decoder__full__seed0"]
    assert unet["strategy"] == "U-Net (scratch)" and unet["status"] == "done"
    assert float(unet["dice_mean"]) > 0.75, unet["dice_mean"]
    assert "U-Net (scratch)" in (tmp_path / "out" / "results.md").read_text(encoding="utf-8")


def test_prompted_study_with_a_unet_backbone_fails_before_running(disc_sources, tmp_path):
    data = study_dict(disc_sources, backbones={"unet_test": {}})
    data["train"] = {**data["train"], "task": {"mode": "prompted"}}
    with pytest.raises(ConfigError, match=r"backbones\.unet_test: task\.mode=prompted with model\.name=unet"):
        load_study(write_study(tmp_path / "study.yaml", data))
