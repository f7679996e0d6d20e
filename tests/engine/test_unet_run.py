"""The U-Net baseline trained by samtune's engine, then used like any run (issue 15)."""

import json

import numpy as np
import torch
from tests.helpers.generated_data import write_disc_dataset
from PIL import Image

from samtune.cli.main import main
from samtune.engine.api import train
from samtune.engine.config import TrainConfig
from samtune.inference.predictor import Predictor


def test_tiny_unet_learns_discs_and_predicts_like_any_run(tmp_path, capsys):
    train_dir = write_disc_dataset(tmp_path / "train", 6, seed=1)
    val_dir = write_disc_dataset(tmp_path / "val", 3, seed=2)
    config = TrainConfig()
    config.model.name = "unet_test"  # the registered U-Net with 4 base filters
    config.data.train, config.data.val = str(train_dir), str(val_dir)
    config.optim.steps, config.optim.lr, config.optim.warmup_steps = 40, 1e-2, 2
    config.optim.batch_size = 2
    config.eval.every, config.run.checkpoint_every, config.run.log_every = 20, 40, 10
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny convolutions: more threads only contend on a loaded machine
    try:
        result = train(config, tmp_path / "run")
    finally:
        torch.set_num_threads(threads)

    run = tmp_path / "run"
    info = json.loads((run / "run.json").read_text())
    # 64 px discs, isotropic: 64 -> 32 -> 16 -> 8 -> 4, so four stride-2 levels, 4..64 filters
    assert info["model_overrides"]["strides"] == [[1, 1]] + [[2, 2]] * 4
    assert info["model_overrides"]["filters"] == [4, 8, 16, 32, 64]
    assert info["model_overrides"]["image_size"] == 64
    assert info["strategy"] == "unet_test/encoder+decoder/full"
    assert info["trainable_parameters"] == info["total_parameters"] > 0
    assert result.best_dice is not None and result.best_dice > 0.8, result.best_dice

    # the predictor rebuilds the planned network from run.json and reproduces the val Dice
    predictor = Predictor.from_run(run)
    scores = []
    for name in sorted((val_dir / "images").iterdir()):
        image = np.asarray(Image.open(name))
        truth = np.asarray(Image.open(val_dir / "masks" / name.name)) > 0
        pred = predictor.predict_images([image])[0] == 1
        scores.append(2 * (pred & truth).sum() / (pred.sum() + truth.sum()))
    assert np.mean(scores) > 0.8, scores

    # `samtune eval --run` scores it like any run
    assert main(["eval", "--run", str(run), "--data", str(val_dir), "--out", str(tmp_path / "eval")]) == 0
    summary = json.loads((tmp_path / "eval" / "summary.json").read_text())
    # same predictions, same Dice: the predictor above and the engine's validation of the kept weights
    assert abs(summary["mean_over_classes"]["dice"] - np.mean(scores)) < 1e-6
    best = json.loads((run / "summary.json").read_text())["best_val_dice"]
    assert abs(summary["mean_over_classes"]["dice"] - best) < 1e-4
    capsys.readouterr()
