"""Training runs given as `model.checkpoint` (setup 2) that cannot be a starting point: one line,
exit 2, nothing written (neither in the new run's folder nor in the run given)."""

import shutil
from pathlib import Path

import pytest
from tests.helpers.generated_data import write_disc_dataset
from tests.helpers.trained_runs import trained_run


@pytest.fixture(scope="module")
def discs(tmp_path_factory) -> Path:
    return write_disc_dataset(tmp_path_factory.mktemp("discs") / "train", 2, seed=3)


def train_argv(checkpoint: Path, data: Path, out: Path, model: str = "tiny_vit_test") -> list:
    return ["train", "default", "--set", f"model.name={model}", "--set", f"model.checkpoint={checkpoint}",
            "--set", f"data.train={data}", "--set", "task.mode=prompted", "--set", "run.device=cpu",
            "--out", out]


def test_unfinished_run(refused, tmp_path, tmp_path_factory, discs):
    run = tmp_path / "setup2"
    shutil.copytree(trained_run("prompted", tmp_path_factory), run)
    (run / "summary.json").unlink()  # what an interrupted run leaves
    refused(train_argv(run, discs, tmp_path / "out"), watch=[tmp_path], names=[str(run), "--resume"])


def test_automatic_run(refused, tmp_path, tmp_path_factory, discs):
    run = trained_run("automatic", tmp_path_factory)
    refused(train_argv(run, discs, tmp_path / "out"), watch=[tmp_path, run], names=[str(run), "automatic"])


def test_run_of_another_model(refused, tmp_path, tmp_path_factory, discs):
    run = trained_run("prompted", tmp_path_factory)
    refused(train_argv(run, discs, tmp_path / "out", model="sam_vit_test"), watch=[tmp_path, run],
            names=[str(run), "tiny_vit_test", "sam_vit_test"])


def test_folder_that_is_no_run(refused, tmp_path, discs):
    folder = tmp_path / "weights_here"
    folder.mkdir()
    refused(train_argv(folder, discs, tmp_path / "out"), watch=[tmp_path], names=[str(folder), "is a folder"])


def test_adapter_run(refused, tmp_path, discs):
    from samtune.engine.api import train
    from samtune.engine.config import TrainConfig

    config = TrainConfig()
    config.model.name, config.task.mode = "tiny_vit_test", "prompted"
    config.strategy.component, config.strategy.method = "decoder", "adapter"
    config.data.train = str(discs)
    config.optim.steps, config.run.threads, config.run.tensorboard = 1, 1, "off"
    run = tmp_path / "adapter_run"
    train(config, run)
    refused(train_argv(run, discs, tmp_path / "out"), watch=[tmp_path], names=[str(run), "adapters"])
