"""The training engine on tiny models: learning, resume, cache, errors."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from samtune.cli.main import main
from samtune.engine.api import train
from samtune.engine.config import TrainConfig
from samtune.engine.state import load_training_state
from samtune.engine.trainer import Trainer
from tests.helpers.tiny_train import tiny_config


def final_weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return load_training_state(run_dir / "state" / "last.pt")["trainable"]


def test_run_directory_contents(disc_data, tmp_path):
    result = train(tiny_config(disc_data), tmp_path / "run")
    run = tmp_path / "run"
    assert result.steps == 6
    for name in ("config.yaml", "run.json", "metrics.jsonl", "curves.png", "summary.json", "state/last.pt",
                 "weights/tuning.safetensors", "weights/tuning.json"):
        assert (run / name).is_file(), name
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if "loss" in r] == [1, 2, 3, 4, 5, 6]
    assert [r["step"] for r in records if "val_dice" in r] == [3, 6]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["steps"] == 6 and summary["strategy"] == "tiny_vit_test/encoder+decoder/lora"
    assert 0 < summary["trainable_parameters"] < summary["total_parameters"]


def test_resume_after_interrupt_is_bit_identical(disc_data, tmp_path, monkeypatch):
    config = tiny_config(disc_data)
    train(config, tmp_path / "straight")

    original = Trainer._micro_step

    def interrupt_at_step_4(self, micro):
        if self.step == 4:
            raise KeyboardInterrupt
        return original(self, micro)

    monkeypatch.setattr(Trainer, "_micro_step", interrupt_at_step_4)
    with pytest.raises(KeyboardInterrupt):
        train(config, tmp_path / "resumed")
    assert load_training_state(tmp_path / "resumed" / "state" / "last.pt")["step"] == 4
    monkeypatch.setattr(Trainer, "_micro_step", original)
    train(None, tmp_path / "resumed", resume=True)

    straight, resumed = final_weights(tmp_path / "straight"), final_weights(tmp_path / "resumed")
    assert straight.keys() == resumed.keys() and len(straight) > 0
    for name in straight:
        assert torch.equal(straight[name], resumed[name]), name
    steps = [json.loads(x)["step"] for x in (tmp_path / "resumed" / "metrics.jsonl").read_text().splitlines()]
    assert steps == [json.loads(x)["step"] for x in (tmp_path / "straight" / "metrics.jsonl").read_text().splitlines()]


def test_embedding_cache_gives_the_same_training(disc_data, tmp_path):
    base = dict(strategy__component="decoder", strategy__method="full", task__mode="prompted")
    cached = train(tiny_config(disc_data, run__cache_embeddings="memory", **base), tmp_path / "cached")
    plain = train(tiny_config(disc_data, run__cache_embeddings="off", **base), tmp_path / "plain")
    a, b = final_weights(tmp_path / "cached"), final_weights(tmp_path / "plain")
    for name in a:
        torch.testing.assert_close(a[name], b[name], atol=1e-6, rtol=0)
    assert cached.best_dice == pytest.approx(plain.best_dice, abs=1e-6)


def test_training_lowers_the_loss(disc_data, tmp_path):
    config = tiny_config(disc_data, strategy__component="decoder", strategy__method="full", task__mode="prompted",
                         optim__steps=24, optim__lr=3e-3, eval__every=24)
    config.run.log_every = 8
    result = train(config, tmp_path / "run")
    losses = [r["loss"] for r in result.history if "loss" in r]
    assert len(losses) == 3 and losses[0] > losses[1] > losses[2], losses


def test_cli_errors_exit_2(disc_data, tmp_path, capsys):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("optim:\n  stepz: 3\n")
    assert main(["train", str(recipe), "--out", str(tmp_path / "x")]) == 2
    assert "unknown configuration key 'optim.stepz'; did you mean steps?" in capsys.readouterr().err
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "file").write_text("keep me")
    recipe.write_text(f"model:\n  name: tiny_vit_test\ndata:\n  train: {disc_data['train']}\n")
    assert main(["train", str(recipe), "--out", str(tmp_path / "busy")]) == 2
    assert "already exists and is not empty; pass --overwrite" in capsys.readouterr().err
    assert (tmp_path / "busy" / "file").read_text() == "keep me"
    if not torch.cuda.is_available():
        assert main(["train", str(recipe), "--out", str(tmp_path / "z"), "--device", "cuda"]) == 2
        assert "run.device=cuda but no CUDA device is available" in capsys.readouterr().err
        assert not (tmp_path / "z").exists()
    recipe.write_text("model:\n  name: sam_vit_b\n")
    assert main(["train", str(recipe), "--out", str(tmp_path / "y")]) == 2
    assert "model.checkpoint is not set" in capsys.readouterr().err


def test_torchrun_two_processes_match_one(disc_data, tmp_path):
    """2 gloo processes x batch 1 == 1 process x batch 2 (same global batch)."""
    recipe = tmp_path / "ddp.yaml"
    recipe.write_text(
        "model: {name: tiny_vit_test}\n"
        "strategy: {component: encoder+decoder, method: lora}\n"
        f"data: {{train: {disc_data['train']}}}\n"
        "optim: {steps: 3, lr: 0.003, batch_size: 1}\n"
        "run: {threads: 1, log_every: 1}\n"
    )
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29533",
               "-m", "samtune", "train", str(recipe), "--out", str(tmp_path / "ddp")]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    single = TrainConfig()
    single.model.name = "tiny_vit_test"
    single.strategy.component, single.strategy.method = "encoder+decoder", "lora"
    single.data.train = str(disc_data["train"])
    single.optim.steps, single.optim.lr, single.optim.batch_size = 3, 3e-3, 2
    single.run.threads, single.run.log_every = 1, 1
    train(single, tmp_path / "single")
    a, b = final_weights(tmp_path / "ddp"), final_weights(tmp_path / "single")
    for name in a:
        torch.testing.assert_close(a[name], b[name], atol=1e-5, rtol=0)
    def files(root: Path) -> list[str]:  # TensorBoard names its event file by time, host and pid
        names = (str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
        return sorted("tensorboard/EVENTS" if name.startswith("tensorboard/") else name for name in names)

    assert files(tmp_path / "ddp") == files(tmp_path / "single")
    assert files(tmp_path / "ddp").count("tensorboard/EVENTS") == 1  # rank 0 alone wrote events
