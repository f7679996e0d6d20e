"""Bad input to the scale-out features (issue 18): one line naming the value, exit 2,
nothing written."""

from __future__ import annotations

import builtins
import json
import shutil
import sys

import pytest

from tests.helpers.tiny_study import study_dict, write_study


@pytest.fixture(scope="module")
def discs(tmp_path_factory):
    from tests.helpers.generated_data import write_disc_dataset

    root = tmp_path_factory.mktemp("scaleout")
    return {"train": write_disc_dataset(root / "train", 4, seed=1), "val": write_disc_dataset(root / "val", 2, seed=2)}


def test_ensemble_of_runs_with_other_classes(refused, automatic_run, tmp_path):
    other = tmp_path / "other_task"
    shutil.copytree(automatic_run, other)
    info = json.loads((other / "run.json").read_text())
    info["labels"] = ["tumour"]  # what a run of another task records
    (other / "run.json").write_text(json.dumps(info))
    from tests.helpers.generated_data import write_disc_dataset

    images = write_disc_dataset(tmp_path / "inputs", 1, seed=5) / "images"
    out = tmp_path / "preds"
    refused(["predict", images / "case00.png", "--run", automatic_run, "--run", other, "--out", out],
            watch=[tmp_path], names=[str(other), "tumour"])
    refused(["eval", "--run", automatic_run, "--run", other, "--data", tmp_path / "inputs", "--out", tmp_path / "ev"],
            watch=[tmp_path], names=[str(other), "tumour"])


def test_slurm_executor_without_submitit(refused, discs, tmp_path, monkeypatch):
    study = write_study(tmp_path / "s.yaml", study_dict(discs))
    real_import = builtins.__import__

    def no_submitit(name, *args, **kwargs):
        if name == "submitit" or name.startswith("submitit."):
            raise ImportError("No module named 'submitit'")
        return real_import(name, *args, **kwargs)

    monkeypatch.delitem(sys.modules, "submitit", raising=False)
    monkeypatch.setattr(builtins, "__import__", no_submitit)
    refused(["study", study, "--out", tmp_path / "out", "--executor", "slurm"], watch=[tmp_path],
            names=["--executor slurm", "submitit"])


def test_more_workers_than_gpus(refused, discs, tmp_path):
    study = write_study(tmp_path / "s.yaml", study_dict(discs))
    refused(["study", study, "--out", tmp_path / "out", "--workers", "3", "--gpus", "0,1"], watch=[tmp_path],
            names=["--workers 3", "2 GPU(s)", "0,1"])


def test_more_folds_than_patients(refused, discs, tmp_path):
    refused(["data", "split", discs["train"], "--folds", "5", "--out", tmp_path / "cv"], watch=[tmp_path, discs["train"]],
            names=["--folds 5", "4 patient group(s)", str(discs["train"])])
    data = study_dict(discs, datasets={"discs": {"train": str(discs["train"]), "folds": 9}})
    study = write_study(tmp_path / "s.yaml", data)
    refused(["study", study, "--out", tmp_path / "out"], watch=[tmp_path], names=["datasets.discs.folds", "9"])


def test_ensemble_of_an_automatic_and_a_prompted_run(refused, automatic_run, prompted_run, tmp_path):
    """Runs of different tasks (automatic vs prompted) cannot be averaged."""
    from tests.helpers.generated_data import write_disc_dataset

    inputs = write_disc_dataset(tmp_path / "inputs", 1, seed=6)
    refused(["predict", inputs / "images" / "case00.png", "--run", automatic_run, "--run", prompted_run,
             "--out", tmp_path / "preds"], watch=[tmp_path], names=[str(prompted_run), "prompted run"])
    refused(["eval", "--run", automatic_run, "--run", prompted_run, "--data", inputs, "--out", tmp_path / "ev"],
            watch=[tmp_path], names=[str(prompted_run), "prompted run"])


def test_ensemble_of_the_same_run_twice(refused, automatic_run, tmp_path):
    from tests.helpers.generated_data import write_disc_dataset

    inputs = write_disc_dataset(tmp_path / "inputs", 1, seed=7)
    refused(["eval", "--run", automatic_run, "--run", automatic_run, "--data", inputs, "--out", tmp_path / "ev"],
            watch=[tmp_path], names=["same run is given twice"])


def _submitit_local(discs, tmp_path, train=None) -> Path:
    """A tiny study for submitit's local executor (the slurm path without a scheduler)."""
    pytest.importorskip("submitit")
    datasets = {"discs": {"train": str(train or discs["train"]), "val": str(discs["val"])}}
    return write_study(tmp_path / "s.yaml", study_dict(discs, datasets=datasets, executor={"cluster": "local"}))


def test_slurm_study_with_an_unreadable_case_creates_nothing(refused, discs, tmp_path):
    """--executor slurm runs the same preflight as the local executor, before the folder exists."""
    train = tmp_path / "train"
    shutil.copytree(discs["train"], train)
    (train / "images" / "case01.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 30)
    study = _submitit_local(discs, tmp_path, train)
    refused(["study", study, "--out", tmp_path / "out", "--executor", "slurm"], watch=[tmp_path],
            names=["case01.png"])


def test_slurm_study_with_a_bad_cell_value_creates_nothing(refused, discs, tmp_path):
    """A method override that clashes only once the cells are expanded (a check of the preflight)."""
    data = study_dict(discs, executor={"cluster": "local"}, per_method={"lora": ["optim.lr=-1"]})
    study = write_study(tmp_path / "s.yaml", data)
    refused(["study", study, "--out", tmp_path / "out", "--executor", "slurm"], watch=[tmp_path],
            names=["optim.lr"])


def test_slurm_study_into_a_folder_that_is_not_a_study(refused, discs, tmp_path):
    out = tmp_path / "documents"
    out.mkdir()
    (out / "thesis.txt").write_text("keep me")
    study = _submitit_local(discs, tmp_path)
    refused(["study", study, "--out", out, "--executor", "slurm"], watch=[tmp_path], names=[str(out), "not a study folder"])
