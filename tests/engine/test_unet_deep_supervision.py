"""Deep supervision of the U-Net baseline (issue 15): nnU-Net's scale weights, the auxiliary
outputs in training only, the weighted loss, and a run that trains with it and predicts."""

import json

import pytest
import torch
from tests.helpers.generated_data import write_disc_dataset

from samtune.engine.api import train
from samtune.engine.config import TrainConfig
from samtune.engine.objective import make_objective
from samtune.inference.predictor import Predictor
from samtune.models.unet import build_unet, deep_supervision_heads, deep_supervision_weights


def test_nnunets_weights_and_heads():
    # nnU-Net, 7 levels (the prostate plan): 6 scales weighted 1, 1/2, 1/4, 1/8, 1/16, 0 -> 5 used outputs
    assert deep_supervision_heads(7) == 4
    assert deep_supervision_weights(5) == pytest.approx([16 / 31, 8 / 31, 4 / 31, 2 / 31, 1 / 31])
    assert deep_supervision_heads(5) == 2 and deep_supervision_weights(3) == pytest.approx([4 / 7, 2 / 7, 1 / 7])


def test_auxiliary_outputs_in_training_only_and_the_weighted_loss():
    torch.manual_seed(0)
    model = build_unet(64, 2, base_filters=4, deep_supervision=True)  # 5 levels: 2 heads
    images = torch.rand(2, 3, 64, 64)
    model.train()
    outputs = model.encode(images)
    assert outputs.shape == (2, 3, 2, 64, 64)  # output + 2 auxiliary, each upsampled to 64 px
    model.eval()
    with torch.no_grad():
        assert model.encode(images).shape == (2, 2, 64, 64)

    objective = make_objective("automatic", 1)
    batch = {"image": images, "mask": (torch.rand(2, 64, 64) > 0.5).long()}
    model.train()
    logits = objective.logits(model, batch)
    assert logits.shape == (2, 3, 2, 64, 64)
    with torch.no_grad():
        per_output = [float(objective.loss(logits[:, i], batch)) for i in range(3)]
        total = float(objective.loss(logits, batch))
    assert total == pytest.approx(4 / 7 * per_output[0] + 2 / 7 * per_output[1] + 1 / 7 * per_output[2], rel=1e-6)
    assert len({round(v, 4) for v in per_output}) == 3  # three different outputs, not one repeated


def test_a_deep_supervised_unet_run_trains_and_predicts(tmp_path):
    train_dir = write_disc_dataset(tmp_path / "train", 4, seed=1)
    config = TrainConfig()
    config.model.name, config.model.deep_supervision = "unet_test", True
    config.data.train, config.data.val = str(train_dir), str(train_dir)
    config.optim.steps, config.optim.lr, config.optim.warmup_steps, config.optim.batch_size = 20, 1e-2, 2, 2
    config.eval.every, config.run.checkpoint_every = 20, 20
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        result = train(config, tmp_path / "run")
    finally:
        torch.set_num_threads(threads)
    info = json.loads((tmp_path / "run" / "run.json").read_text())
    assert info["model_overrides"]["deep_supervision"] is True
    heads = [k for k in Predictor.from_run(tmp_path / "run").model.state_dict() if "deep_supervision_heads" in k]
    assert heads  # the auxiliary heads were saved and rebuilt with the run
    assert result.best_dice is not None and result.best_dice > 0.3, result.best_dice

