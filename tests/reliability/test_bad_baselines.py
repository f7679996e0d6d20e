"""Bad input for the baselines (issue 15): one line, exit 2, nothing written."""

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
