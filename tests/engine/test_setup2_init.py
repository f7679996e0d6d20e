"""Setup 2: a prompted multi-source run as `model.checkpoint` of a fine-tune, and `eval --run`
of a multi-source run on its own validation sources (two real MedScribble tasks, tiny model)."""

import json
from pathlib import Path

import pytest
import torch

from samtune.configs import from_dict
from samtune.engine.api import train
from samtune.engine.config import TrainConfig
from samtune.methods.merging import export_merged
from samtune.runs import RunDir
from samtune.runs.base_weights import MERGED_FILE
from samtune.runs.reading import resolve_base

DATA = Path(__file__).parents[2].parent / "shared" / "data" / "MedScribble-4tasks"
FEMUR, BLADDER = str(DATA / "xray-femur"), str(DATA / "ct-bladder")  # 5 + 5 labelled 2D slices
RUN = {"device": "cpu", "threads": 1, "log_every": 1, "tensorboard": "off", "seed": 0}


def setup2_config() -> TrainConfig:
    return from_dict(TrainConfig, {
        "model": {"name": "tiny_vit_test", "image_size": 64},
        "strategy": {"component": "encoder+decoder", "method": "lora"},
        "task": {"mode": "prompted", "prompt": "box"},
        "data": {"train": [{"path": FEMUR}, {"path": BLADDER}], "val": [{"path": FEMUR}, {"path": BLADDER}]},
        "optim": {"steps": 2, "batch_size": 2, "lr": 1e-2, "warmup_steps": 0},
        "eval": {"every": 2}, "run": RUN,
    })


@pytest.fixture(scope="module")
def setup2_run(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("setup2") / "run"
    train(setup2_config(), run)
    return run


def test_fine_tune_starts_from_the_merged_setup2_weights(setup2_run, tmp_path):
    setup2 = RunDir.open(setup2_run).load_model()
    merged = export_merged(setup2)  # LoRA folded into the encoder and decoder weights
    config = from_dict(TrainConfig, {
        "model": {"name": "tiny_vit_test", "image_size": 64, "checkpoint": str(setup2_run)},
        "strategy": {"component": "decoder", "method": "full"},
        "task": {"mode": "prompted"}, "data": {"train": FEMUR},
        "optim": {"steps": 1, "batch_size": 1, "warmup_steps": 0}, "eval": {"every": 1}, "run": RUN,
    })
    train(config, tmp_path / "target")
    assert (setup2_run / "weights" / MERGED_FILE).is_file()
    target = RunDir.open(tmp_path / "target").load_model()  # base verified by sha256 of the merged file
    encoder = {k: v for k, v in target.state_dict().items() if k.startswith("image_encoder.")}
    assert encoder and all(torch.equal(v, merged[k]) for k, v in encoder.items())  # frozen: the setup-2 encoder
    # ... which is not the random initialisation that setup 2 itself started from
    torch.manual_seed(0)
    from samtune.models.registry import create_model

    init = create_model("tiny_vit_test", image_size=64).state_dict()
    changed = [k for k in encoder if not torch.equal(encoder[k], init[k])]
    assert any(".qkv." in k for k in changed), changed[:5]
    # Made once: the second resolution reuses the file (same bytes, same mtime).
    stamp = (setup2_run / "weights" / MERGED_FILE).stat().st_mtime_ns
    assert resolve_base(setup2_run, "tiny_vit_test").stat().st_mtime_ns == stamp


def test_eval_of_a_multi_source_run_scores_its_val_sources(setup2_run, tmp_path):
    from samtune.inference.run_eval import evaluate_run

    result = evaluate_run(setup2_run, tmp_path / "scores")
    summary = json.loads(result.summary_path.read_text())
    assert summary["n_cases"] == 10  # 5 femur + 5 bladder slices
    cases = result.per_case_path.read_text().splitlines()[1:]
    assert sum(line.startswith("0:") for line in cases) == 5 and sum(line.startswith("1:") for line in cases) == 5
    dice = summary["mean_over_classes"]["dice"]
    assert 0.0 <= dice <= 1.0
    assert "2 sources" in result.source
