"""Bad input for the baselines (issue 15): one line, exit 2, nothing written."""

from generated_data import write_disc_dataset


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
