"""`samtune.runs`: the run directory's layout, reading and checking it, rebuilding its model."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
import yaml
from safetensors.torch import load_file

from samtune.assets import sha256_of
from samtune.configs import from_dict
from samtune.engine.config import TrainConfig
from samtune.errors import CheckpointError, UserError
from samtune.models.registry import create_model
from samtune.models.safetensors_check import safetensors_problem
from samtune.runs import RunDir, RunLayout

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def run_copy(automatic_run, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(automatic_run, copy, ignore=shutil.ignore_patterns("state", "tensorboard", "*.png"))
    return copy


def test_layout_names_every_file_and_create_needs_overwrite_for_a_non_empty_folder(tmp_path):
    layout = RunLayout(tmp_path / "r")
    assert [p.relative_to(layout.path).as_posix() for p in (
        layout.config_path, layout.info_path, layout.weights_dir, layout.state_file("last"), layout.metrics_path,
        layout.summary_path, layout.curves_path, layout.tensorboard_dir)] == [
        "config.yaml", "run.json", "weights", "state/last.pt", "metrics.jsonl", "summary.json", "curves.png",
        "tensorboard"]
    assert layout.is_empty() and not layout.has_checkpoint() and not layout.is_finished()
    layout.create()
    layout.write_info({"labels": ["a"]})
    assert json.loads(layout.info_path.read_text())["labels"] == ["a"]
    with pytest.raises(UserError, match="already exists; pass --overwrite"):
        layout.create()
    layout.create(overwrite=True)
    assert layout.path.is_dir() and layout.is_empty()


def test_a_trained_run_reads_back_and_its_model_holds_the_saved_tensors(automatic_run):
    run = RunDir.open(automatic_run).check()
    info = json.loads((automatic_run / "run.json").read_text())
    assert run.settings.model == "tiny_vit_test" and run.settings.mode == "automatic"
    assert run.settings.method == "full" and run.settings.component == "decoder"
    assert run.labels == tuple(info["labels"]) and len(run.labels) == 1
    model = run.load_model("cpu")
    saved = load_file(str(automatic_run / "weights" / "tuning.safetensors"))
    state = model.state_dict()
    assert saved and all(torch.equal(state[k], v) for k, v in saved.items())
    # frozen parts: the random initialisation `train` made right after seeding with run.seed
    torch.manual_seed(run.settings.seed)
    base = create_model("tiny_vit_test", pretrained=None, **run.record.base.overrides).state_dict()
    frozen = [k for k in base if k.startswith("image_encoder.")]
    assert frozen and all(torch.equal(state[k], base[k]) for k in frozen)
    assert not all(torch.equal(state[k], base[k]) for k in saved)  # training changed the tuned ones


def test_flat_strategy_options_of_older_runs_move_into_options(run_copy):
    config = yaml.safe_load((run_copy / "config.yaml").read_text())
    config["strategy"] = {"component": "decoder", "method": "lora", "rank": 8, "alpha": 4.0, "dropout": 0.0,
                          "blocks": None, "adapter_init": "zero"}
    (run_copy / "config.yaml").write_text(yaml.safe_dump(config))
    data = RunDir.open(run_copy).config_data()
    # dropout 0 and blocks None were lora's defaults; adapter_init was never lora's
    assert data["strategy"] == {"component": "decoder", "method": "lora", "options": {"rank": 8, "alpha": 4.0}}
    assert from_dict(TrainConfig, data).strategy.options["rank"] == 8
    config["strategy"].update(rank=4, alpha=4.0)  # all defaults (alpha = rank): as a run written today
    (run_copy / "config.yaml").write_text(yaml.safe_dump(config))
    assert RunDir.open(run_copy).config_data()["strategy"]["options"] == {}
    config["strategy"]["method"] = "full"  # full took none of them: all dropped, as at training time
    (run_copy / "config.yaml").write_text(yaml.safe_dump(config))
    assert RunDir.open(run_copy).config_data()["strategy"]["options"] == {}


def test_the_base_checkpoint_is_verified_by_sha256(run_copy, automatic_run):
    run = RunDir.open(run_copy)
    torch.manual_seed(run.settings.seed)  # the very weights the run was trained from
    base = run_copy.parent / "base.pth"
    torch.save(create_model("tiny_vit_test", pretrained=False, **run.record.base.overrides).state_dict(), base)
    config = yaml.safe_load((run_copy / "config.yaml").read_text())
    config["model"]["checkpoint"] = str(base)
    (run_copy / "config.yaml").write_text(yaml.safe_dump(config))
    record = json.loads((run_copy / "weights" / "tuning.json").read_text())
    record["base"].update(checkpoint=str(base), sha256=sha256_of(base))
    (run_copy / "weights" / "tuning.json").write_text(json.dumps(record))
    model = RunDir.open(run_copy).load_model()
    reference = RunDir.open(automatic_run).load_model()
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), reference.state_dict().values()))
    torch.manual_seed(123)  # other base weights under the same name: refused
    torch.save(create_model("tiny_vit_test", pretrained=False, **run.record.base.overrides).state_dict(), base)
    with pytest.raises(CheckpointError, match=f"{base} has sha256 .* was tuned from a base checkpoint"):
        RunDir.open(run_copy).load_model()


def test_safetensors_check_passes_a_good_file_and_names_damage(automatic_run, tmp_path):
    good = automatic_run / "weights" / "tuning.safetensors"
    assert safetensors_problem(good) is None
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(good.read_bytes()[:-1])
    assert safetensors_problem(cut).startswith("truncated (tensor '")
    huge = tmp_path / "huge.safetensors"
    huge.write_bytes((10**12).to_bytes(8, "little") + b"{}")
    assert safetensors_problem(huge) == "not a safetensors file (header too large)"
