"""The training objective: output heads train in automatic tasks; validation Dice is
`samtune.evaluation`'s."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from samtune.engine.api import heads_change, model_overrides, train
from samtune.engine.config import TrainConfig
from samtune.evaluation.accumulator import MetricAccumulator, mean_dice
from samtune.models.registry import create_model

pytestmark = pytest.mark.usefixtures("one_thread")
HEADS = ("mask_decoder.mask_tokens", "mask_decoder.output_hypernetworks_mlps", "mask_decoder.iou_prediction_head")


def two_class_dataset(folder, count=3, size=64):
    """Images with a disc (value 100) and a square (value 200) in the masks."""
    rng = np.random.default_rng(3)
    (folder / "images").mkdir(parents=True)
    (folder / "masks").mkdir(parents=True)
    yy, xx = np.mgrid[:size, :size]
    for i in range(count):
        mask = np.zeros((size, size), np.uint8)
        mask[(yy - 20 - i) ** 2 + (xx - 20) ** 2 <= 64] = 100
        mask[40:52, 36 + i:50 + i] = 200
        image = rng.normal(50, 10, (size, size)) + (mask == 100) * 90 + (mask == 200) * 160
        Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).save(folder / "images" / f"c{i}.png")
        Image.fromarray(mask).save(folder / "masks" / f"c{i}.png")
    return folder


def test_heads_train_whenever_the_task_is_automatic():
    config = TrainConfig()
    assert heads_change(config, model_overrides(config, 2))  # 2 + 1 = SAM's 3 outputs, new meaning
    assert heads_change(config, model_overrides(config, 1))
    config.task.mode = "prompted"
    assert not heads_change(config, model_overrides(config, 1))


def test_lora_with_two_foreground_classes_trains_the_output_heads(tmp_path):
    config = TrainConfig()
    config.model.name = "tiny_vit_test"
    config.strategy.component, config.strategy.method = "decoder", "lora"
    config.data.train = str(two_class_dataset(tmp_path / "data"))
    config.data.labels = "disc=100,square=200"
    config.optim.steps, config.optim.lr, config.optim.warmup_steps = 2, 1e-2, 0
    config.run.log_every, config.run.checkpoint_every, config.run.device = 1, 2, "cpu"
    train(config, tmp_path / "run")
    record = json.loads((tmp_path / "run" / "weights" / "tuning.json").read_text())
    assert record["num_classes_changed"] is True and record["base"]["overrides"]["num_multimask_outputs"] == 3
    saved = load_file(str(tmp_path / "run" / "weights" / "tuning.safetensors"))
    torch.manual_seed(config.run.seed)  # the base the run started from
    base = create_model("tiny_vit_test", pretrained=None, num_multimask_outputs=3).state_dict()
    for head in HEADS:
        keys = [k for k in saved if k.startswith(head)]
        assert keys, f"{head} is not trainable"
        # the IoU head trains but the segmentation loss has no IoU term, so it gets no gradient
        if head != "mask_decoder.iou_prediction_head":
            assert any(not torch.equal(saved[k], base[k]) for k in keys), f"{head} did not change"
    lora = [k for k in saved if k.startswith("tuning.")]
    assert lora and all(not k.startswith("mask_decoder.transformer") for k in saved)  # LoRA, not full


def test_validation_dice_is_the_evaluation_summary_dice_with_its_empty_mask_rules():
    gt1 = np.zeros((8, 8), np.uint8)
    gt1[0, 0:4] = 1  # class 1: 4 pixels; class 2 absent
    pred1 = np.zeros((8, 8), np.uint8)
    pred1[0, 2:6] = 1  # overlaps 2 of them: Dice 2*2/(4+4) = 0.5; class 2 empty in both: 1
    gt2 = np.zeros((8, 8), np.uint8)
    gt2[3:5, 3:5] = 1
    gt2[6, 6] = 2
    pred2 = np.zeros((8, 8), np.uint8)
    pred2[6, 6] = 2  # class 1 missed: 0; class 2 exact: 1
    pairs = [(pred1, gt1), (pred2, gt2)]
    # per class mean over slices, then over classes: ((0.5 + 0) / 2 + (1 + 1) / 2) / 2
    assert mean_dice(pairs, [1, 2]) == pytest.approx(0.625)
    accumulator = MetricAccumulator(both_empty="perfect")
    for i, (pred, gt) in enumerate(pairs):
        accumulator.add(f"s{i}", pred, gt, classes=[1, 2])
    assert accumulator.summary()["mean_over_classes"]["dice"] == pytest.approx(0.625)
    # the "nan" rule leaves the both-empty pair out: class 2 = 1 from one slice
    assert mean_dice(pairs, [1, 2], both_empty="nan") == pytest.approx((0.25 + 1.0) / 2)


def test_best_validation_dice_equals_what_samtune_eval_reports_for_the_run(automatic_run, tmp_path):
    from samtune.inference.run_eval import evaluate_run

    summary = json.loads((automatic_run / "summary.json").read_text())
    result = evaluate_run(automatic_run, tmp_path / "eval", data=automatic_run.parent / "val")
    reported = json.loads(result.summary_path.read_text())
    assert summary["best_val_dice"] == pytest.approx(reported["mean_over_classes"]["dice"], abs=1e-9)


def test_the_two_objectives_behind_one_protocol():
    from samtune.engine.objective import AutomaticObjective, PromptedObjective, make_objective

    automatic, prompted = make_objective("automatic", 2), make_objective("prompted", 2)
    assert isinstance(automatic, AutomaticObjective) and isinstance(prompted, PromptedObjective)
    assert (automatic.num_mask_outputs, automatic.eval_classes) == (3, [1, 2])
    assert (prompted.num_mask_outputs, prompted.eval_classes) == (1, [1])
    logits = torch.tensor([[[[0.5, -1.0]], [[2.0, -3.0]], [[-1.0, 0.0]]]])  # [1, 3, 1, 2]
    assert automatic.predict(logits).tolist() == [[[1, 2]]]  # argmax over channels
    assert prompted.predict(logits).tolist() == [[[1, 0]]]  # channel 0 > 0
    batch = {"mask": torch.tensor([[[1, 2]]]), "target": torch.tensor([[[1, 0]]])}
    assert automatic.truth(batch).tolist() == [[[1, 2]]] and prompted.truth(batch).tolist() == [[[1, 0]]]
    with pytest.raises(ValueError, match="unknown task mode 'auto'"):
        make_objective("auto", 1)
