"""A few classes of a rich label map: `data.other_labels: background` (issue 12, item 14)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from tests.helpers.generated_data import write_disc_dataset
from PIL import Image

from samtune.cli.main import main
from samtune.data.labels import parse_label_spec
from samtune.errors import DataError

TOTALSEG = Path(__file__).parents[2].parent / "shared/data/TotalSeg-examples"


def test_apply_sends_only_undeclared_values_to_background():
    mask = np.array([[0, 5, 1], [2, 5, 52]])
    strict = parse_label_spec("liver=5,spleen=1")
    with pytest.raises(DataError, match=r"\[2, 52\] not declared"):
        strict.apply(mask)
    relaxed = strict.with_others("background")
    np.testing.assert_array_equal(relaxed.apply(mask), [[0, 1, 2], [0, 1, 0]])
    assert relaxed.describe() == "liver=5, spleen=1; every other value -> background (other labels: background)"
    assert relaxed.class_of_value(52) == "background (other label)" and relaxed.class_of_value(1) == "spleen"
    with pytest.raises(DataError, match="needs named classes"):
        parse_label_spec("binary").with_others("background")


def test_data_check_on_a_totalsegmentator_mask(tmp_path, capsys):
    listing = tmp_path / "ct.csv"
    listing.write_text(f"image,mask\n{TOTALSEG / 'example_ct_sm.nii.gz'},{TOTALSEG / 'example_seg.nii.gz'}\n")
    assert main(["data", "check", str(listing), "--labels", "liver=5,spleen=1"]) == 2
    assert "not declared" in capsys.readouterr().out
    assert main(["data", "check", str(listing), "--labels", "liver=5,spleen=1", "--other-labels", "background"]) == 0
    out = capsys.readouterr().out
    assert "labels: liver=5, spleen=1; every other value -> background (other labels: background)" in out
    assert "  5: liver, in 1 case(s)" in out and "  2: background (other label), in 1 case(s)" in out
    assert "problems: 0 error(s)" in out


def test_training_records_the_rule(tmp_path, one_thread):
    from samtune.engine.api import train
    from samtune.engine.config import TrainConfig

    data = write_disc_dataset(tmp_path / "discs", 2, seed=3)
    for mask_path in (data / "masks").iterdir():  # add a second structure (value 128) to ignore
        mask = np.asarray(Image.open(mask_path)).copy()
        mask[:4, :4] = 128
        Image.fromarray(mask).save(mask_path)
    config = TrainConfig()
    config.model.name = "tiny_vit_test"
    config.data.train, config.data.labels = str(data), "disc=255"
    config.optim.steps, config.eval.every, config.run.checkpoint_every = 1, 1, 1
    with pytest.raises(DataError, match="128"):
        train(config, tmp_path / "strict")
    config.data.other_labels = "background"
    train(config, tmp_path / "run")
    assert yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())["data"]["other_labels"] == "background"
    info = json.loads((tmp_path / "run" / "run.json").read_text())
    assert info["label_map"] == "disc=255; every other value -> background (other labels: background)"
