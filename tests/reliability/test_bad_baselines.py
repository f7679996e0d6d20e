"""Bad input for the baselines (issue 15): one line, exit 2, nothing written."""

import pytest

from tests.helpers.generated_data import write_disc_dataset


def test_prompted_mode_with_a_unet_is_refused(refused, tmp_path):
    data = write_disc_dataset(tmp_path / "data", 2, seed=1)
    refused(["train", "default", "--set", "model.name=unet", "--set", "task.mode=prompted", "--set", f"data.train={data}",
             "--out", tmp_path / "run"], watch=[tmp_path], names=["task.mode=prompted", "unet", "automatic"])


def test_lora_on_a_unet_is_refused(refused, tmp_path):
    data = write_disc_dataset(tmp_path / "data", 2, seed=1)
    refused(["train", "default", "--set", "model.name=unet", "--set", "strategy.method=lora", "--set", f"data.train={data}",
             "--out", tmp_path / "run"], watch=[tmp_path], names=["strategy.method=lora", "full"])


def test_a_checkpoint_for_a_unet_is_refused(refused, tmp_path):
    data = write_disc_dataset(tmp_path / "data", 2, seed=1)
    refused(["train", "default", "--set", "model.name=unet", "--set", "model.checkpoint=w.pth", "--set", "strategy.method=full", "--set", f"data.train={data}",
             "--out", tmp_path / "run"], watch=[tmp_path], names=["model.checkpoint=w.pth"])


def _export(source, out, dataset_id, name, *extra):
    return ["nnunet", "export", str(source), "--id", str(dataset_id), "--name", name, "--out", str(out), *extra]


def test_a_dataset_id_used_by_another_dataset_is_refused(refused, tmp_path):
    data = write_disc_dataset(tmp_path / "data", 2, seed=1)
    raw = tmp_path / "raw"
    (raw / "Dataset004_Other").mkdir(parents=True)
    refused(_export(data, raw, 4, "Discs"), watch=[tmp_path], names=["--id 4", "Dataset004_Other"])


def test_a_dataset_folder_with_other_content_is_refused(refused, tmp_path, capsys):
    from samtune.cli.main import main

    raw = tmp_path / "raw"
    assert main(_export(write_disc_dataset(tmp_path / "one", 2, seed=1), raw, 5, "Discs")) == 0
    capsys.readouterr()
    other = write_disc_dataset(tmp_path / "two", 2, seed=2)
    refused(_export(other, raw, 5, "Discs"), watch=[tmp_path], names=["Dataset005_Discs", "other content"])


def test_nnunet_check_without_nnunetv2_names_the_install_command(refused, tmp_path, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "nnunetv2" else real(name, *a))
    data = write_disc_dataset(tmp_path / "data", 2, seed=1)
    refused(_export(data, tmp_path / "raw", 6, "Discs", "--check"), watch=[tmp_path],
            names=["pip install 'samtune[nnunet]'"])


def test_a_3d_configuration_on_2d_images_is_refused(refused, tmp_path, capsys):
    from samtune.cli.main import main

    raw = tmp_path / "raw"
    assert main(_export(write_disc_dataset(tmp_path / "data", 2, seed=1), raw, 7, "Discs")) == 0
    capsys.readouterr()
    refused(["nnunet", "plan", str(raw / "Dataset007_Discs"), "--configuration", "3d_fullres",
             "--work", str(tmp_path / "work")], watch=[tmp_path], names=["3d_fullres", "2D images", "2d"])


def _nnunet_study(tmp_path, data, mode="automatic", **entry):
    import yaml

    backbone = {"engine": "nnunetv2", "configuration": "2d", "trainer": "nnUNetTrainer_1epoch", "fold": "all", **entry}
    study = {"train": {"task": {"mode": mode}, "optim": {"steps": 2}, "run": {"device": "cpu"}},
             "backbones": {"nnunet": backbone}, "datasets": {"discs": {"train": str(data), "val": str(data)}}}
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(study))
    return path


def test_an_nnunet_study_without_nnunetv2_names_the_install_command(refused, tmp_path, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "nnunetv2" else real(name, *a))
    study = _nnunet_study(tmp_path, write_disc_dataset(tmp_path / "data", 2, seed=1))
    refused(["study", study, "--out", tmp_path / "out"], watch=[tmp_path], names=["pip install 'samtune[nnunet]'"])


def test_an_nnunet_3d_configuration_on_2d_images_is_refused_in_a_study(refused, tmp_path):
    pytest.importorskip("nnunetv2")
    study = _nnunet_study(tmp_path, write_disc_dataset(tmp_path / "data", 2, seed=1), configuration="3d_fullres")
    refused(["study", study, "--out", tmp_path / "out"], watch=[tmp_path],
            names=["backbones.nnunet.configuration", "3d_fullres", "2D images", "choose 2d"])


def test_prompted_mode_with_nnunet_is_refused(refused, tmp_path):
    pytest.importorskip("nnunetv2")
    study = _nnunet_study(tmp_path, write_disc_dataset(tmp_path / "data", 2, seed=1), mode="prompted")
    refused(["study", study, "--out", tmp_path / "out"], watch=[tmp_path],
            names=["backbones.nnunet", "task.mode=prompted", "automatic"])


def test_a_trainer_nnunet_does_not_ship_is_refused(refused, tmp_path):
    pytest.importorskip("nnunetv2")
    study = _nnunet_study(tmp_path, write_disc_dataset(tmp_path / "data", 2, seed=1), trainer="nnUNetTrainer_3epochs")
    refused(["study", study, "--out", tmp_path / "out"], watch=[tmp_path],
            names=["backbones.nnunet.trainer", "nnUNetTrainer_3epochs", "nnUNetTrainer_1epoch"])


def test_an_nnunet_dataset_id_used_with_other_content_in_the_study_folder_is_refused(refused, tmp_path):
    pytest.importorskip("nnunetv2")
    study = _nnunet_study(tmp_path, write_disc_dataset(tmp_path / "data", 2, seed=1))
    out = tmp_path / "out"
    other = out / "nnunet" / "nnUNet_raw" / "Dataset001_Other"  # e.g. left by an earlier study in this folder
    other.mkdir(parents=True)
    (other / "dataset.json").write_text("{}")
    (out / "runs").mkdir()
    refused(["study", study, "--out", out], watch=[tmp_path], names=["dataset id 1", "Dataset001_Other", "other content"])


def test_deep_supervision_on_a_sam_model_is_refused(refused, tmp_path):
    data = write_disc_dataset(tmp_path / "data", 2, seed=1)
    refused(["train", "default", "--set", "model.name=tiny_vit_test", "--set", "model.deep_supervision=true",
             "--set", f"data.train={data}", "--out", tmp_path / "run"], watch=[tmp_path],
            names=["model.deep_supervision=true", "unet"])
