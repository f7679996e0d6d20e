"""Bad input to `samtune pretrain` and pretrain runs used in the wrong place: one line, exit 2, nothing written."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from samtune.assets import mni_template

MNI = str(mni_template("t1"))
TINY = ["--model", "tiny_vit_test", "--set", "model.image_size=64", "--set", "run.threads=1",
        "--set", "run.device=cpu"]


@pytest.fixture(scope="module")
def pretrain_run(tmp_path_factory) -> Path:
    from samtune.engine.pretrain import pretrain
    from samtune.engine.pretrain_config import PretrainConfig

    config = PretrainConfig()
    config.model.name, config.model.image_size = "sam_vit_test", 64
    config.data.sources = [MNI]
    config.masking.patch, config.optim.steps, config.eval.images = 16, 1, 1
    config.run.device, config.run.threads, config.run.tensorboard = "cpu", 1, "off"
    run = tmp_path_factory.mktemp("pretrain") / "run"
    pretrain(config, run)
    return run


def test_no_images_found(refused, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    refused(["pretrain", empty, *TINY, "--out", tmp_path / "run"], watch=[tmp_path], names=[str(empty)])


def test_image_size_not_divisible_by_mask_patch(refused, tmp_path):
    message = refused(["pretrain", MNI, *TINY, "--set", "masking.patch=24", "--out", tmp_path / "run"],
                      watch=[tmp_path], names=["64", "24"])
    assert "masking.patch" in message


def test_mask_patch_not_a_multiple_of_the_patch_embedding(refused, tmp_path):
    refused(["pretrain", MNI, "--model", "sam_vit_test", "--set", "model.image_size=64", "--set", "masking.patch=8",
             "--out", tmp_path / "run"], watch=[tmp_path], names=["masking.patch 8", "16 px"])


@pytest.mark.parametrize("ratio", ["1.5", "0", "1"])
def test_mask_ratio_outside_zero_one(refused, tmp_path, ratio):
    refused(["pretrain", MNI, *TINY, "--set", f"masking.ratio={ratio}", "--out", tmp_path / "run"],
            watch=[tmp_path], names=[f"masking.ratio {float(ratio)}"])


def test_not_an_image(refused, tmp_path):
    note = tmp_path / "notes.md"
    note.write_text("not an image")
    refused(["pretrain", note, *TINY, "--out", tmp_path / "run"], watch=[tmp_path], names=[str(note)])


def test_pretrain_run_where_a_fine_tuned_model_is_needed(refused, tmp_path, pretrain_run):
    image = tmp_path / "slice.png"
    Image.fromarray(np.full((32, 32), 100, np.uint8)).save(image)
    refused(["predict", image, "--run", pretrain_run, "--box", "2", "2", "20", "20", "--out", tmp_path / "pred"],
            watch=[tmp_path, pretrain_run], names=[str(pretrain_run), "samtune pretrain"])


def test_fine_tuning_run_where_base_weights_are_needed(refused, tmp_path, pretrain_run):
    finetuned = tmp_path / "finetuned"  # what `samtune train` leaves: config.yaml + weights/tuning.json
    (finetuned / "weights").mkdir(parents=True)
    (finetuned / "config.yaml").write_text("model:\n  name: sam_vit_test\n")
    (finetuned / "weights" / "tuning.json").write_text("{}")
    refused(["pretrain", MNI, *TINY, "--checkpoint", finetuned, "--out", tmp_path / "run"],
            watch=[tmp_path], names=[str(finetuned), "training run"])


def test_unfinished_pretrain_run_as_checkpoint(refused, tmp_path):
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    (unfinished / "pretrain.json").write_text("{}")
    refused(["pretrain", MNI, *TINY, "--checkpoint", unfinished, "--out", tmp_path / "run"],
            watch=[tmp_path], names=[str(unfinished), "--resume"])


def test_pretrain_run_given_to_eval(refused, tmp_path, pretrain_run):
    refused(["eval", "--run", pretrain_run, "--out", tmp_path / "scores"],
            watch=[tmp_path, pretrain_run], names=[str(pretrain_run), "samtune pretrain"])
