"""Multi-dataset training (setup 2) on two real MedScribble tasks: draws per dataset, label maps."""

import json
from pathlib import Path

import pytest

from samtune.configs import from_dict
from samtune.engine.api import train
from samtune.engine.config import TrainConfig
from samtune.engine.multi_data import MixedSlices
from samtune.errors import ConfigError

DATA = Path(__file__).parents[2].parent / "shared" / "data" / "MedScribble-4tasks"
FEMUR, BLADDER = str(DATA / "xray-femur"), str(DATA / "ct-bladder")  # 5 + 5 labelled 2D slices


def two_source_config(mode: str, femur_labels: str | None = None, bladder_labels: str | None = None) -> TrainConfig:
    return from_dict(TrainConfig, {
        "model": {"name": "tiny_vit_test", "image_size": 64},
        "strategy": {"component": "decoder", "method": "full"},
        "task": {"mode": mode, "prompt": "box"},
        "data": {"train": [{"path": FEMUR, "weight": 3.0, "labels": femur_labels},
                           {"path": BLADDER, "weight": 1.0, "labels": bladder_labels}]},
        "optim": {"steps": 12, "batch_size": 4, "lr": 1e-3},
        "run": {"device": "cpu", "threads": 1, "log_every": 4, "tensorboard": "off", "seed": 0},
    })


def test_two_source_prompted_run_draws_in_the_asked_ratio(tmp_path, monkeypatch):
    drawn = {FEMUR: 0, BLADDER: 0}
    original = MixedSlices.__getitem__

    def counting(self, index):
        drawn[self.mix.names[self.locate(index)[0]]] += 1
        return original(self, index)

    monkeypatch.setattr(MixedSlices, "__getitem__", counting)
    result = train(two_source_config("prompted"), tmp_path / "run")
    assert result.steps == 12
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["draws_per_dataset"] == drawn  # the record matches what the loop read
    assert sum(drawn.values()) == 48
    # Weights 3:1 -> 36 femur draws expected of 48 (binomial sd 3); both datasets are used.
    assert 27 <= drawn[FEMUR] <= 45 and drawn[BLADDER] >= 3, drawn


def test_uniform_by_default_and_resumable_draws():
    config = two_source_config("prompted")
    for source in config.data.train:
        source.weight = 1.0
    from samtune.engine.data import build_training_data

    data = build_training_data(config.data, config.task, 64, "minmax", seed=0)
    counts = data.train.draw_counts(2000, order_seed=0)
    assert abs(counts[FEMUR] - 1000) < 100 and counts[FEMUR] + counts[BLADDER] == 2000
    assert data.train.draw_counts(2000, order_seed=0) == counts  # a pure function of seed and position


def test_automatic_mode_needs_one_shared_label_map(tmp_path):
    with pytest.raises(ConfigError, match="one shared label map"):
        train(two_source_config("automatic", "femur=255", "bladder=255"), tmp_path / "run")
