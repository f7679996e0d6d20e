"""The training data path on torch.utils.data (issue 13, item 1).

The pinned numbers below were produced by the code before this change (commit f5132c6,
`SliceDataset` read in the training process, one sample at a time): a script built the
two configurations of this file, drew the first four micro-batches with the old loop's
`sample_positions` + `training_sample` (with `set_epoch`) + `collate`, printed their picks
and sums, then trained each configuration with `samtune.engine.api.train` on one torch
thread (AMD EPYC, torch 2.13.0+cpu) and printed the logged losses and validation Dice.
A study runs with that code: with `data.workers=0` the new path must give the same
samples, augmentations, prompts and losses.
"""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
import torch
from tests.helpers.generated_data import write_disc_dataset

from samtune.engine.api import train
from samtune.engine.config import TrainConfig
from samtune.engine.data import TrainSamples, build_training_data
from samtune.engine.loader import PickedItems, StepBatches, make_loader, receive
from samtune.models.registry import get_spec

# Picks are (dataset index, stream position); image/boxes/points are float64 sums of the
# batch's tensors, mask the integer sum of its class map.
PINNED = {
    "prompted": {
        "batches": [
            {"picks": [[3, 0], [0, 1]], "image": 7957.533045921475, "mask": 1035, "boxes": 279.839316368103,
             "points": 691.0},
            {"picks": [[2, 2], [1, 3]], "image": 7297.819656802341, "mask": 637, "boxes": 348.17393684387207,
             "points": 862.0},
            {"picks": [[1, 4], [2, 5]], "image": 7508.212504383177, "mask": 781, "boxes": 275.21699476242065,
             "points": 673.0},
            {"picks": [[3, 6], [0, 7]], "image": 8288.903326603817, "mask": 1186, "boxes": 280.02446842193604,
             "points": 697.0},
        ],
        "losses": [1.5440905094146729, 1.5203790664672852, 1.5361218452453613, 1.52827787399292,
                   1.5242359638214111],
        "val_dice": [0.18345530835787072],
    },
    "automatic": {
        "batches": [
            {"picks": [[4, 0], [0, 1], [5, 2]], "image": 11431.012677559862, "mask": 1400},
            {"picks": [[3, 3], [2, 4], [6, 5]], "image": 10650.887130702962, "mask": 1030},
            {"picks": [[1, 6], [0, 7], [6, 8]], "image": 10669.719065621495, "mask": 1210},
            {"picks": [[1, 9], [3, 10], [5, 11]], "image": 9634.867340020719, "mask": 1039},
        ],
        "losses": [1.5107790231704712, 1.497806191444397, 1.4387760162353516, 1.4138970375061035,
                   1.3355259895324707, 1.3313294649124146],
        "val_dice": [0.5, 0.5],
    },
}


def _volume_folder(folder, seed: int):
    """images/ + masks/ with one 10x40x40 NIfTI volume; a cylinder in slices 3..7."""
    rng = np.random.default_rng(seed)
    (folder / "images").mkdir(parents=True)
    (folder / "masks").mkdir(parents=True)
    zz, yy, xx = np.mgrid[:10, :40, :40]
    blob = ((yy - 20) ** 2 + (xx - 18) ** 2 <= 64) & (zz >= 3) & (zz <= 7)
    image = sitk.GetImageFromArray((rng.normal(100, 20, blob.shape) + 150 * blob).astype(np.int16))
    image.SetSpacing((0.8, 0.8, 2.5))
    mask = sitk.GetImageFromArray(blob.astype(np.uint8))
    mask.CopyInformation(image)
    sitk.WriteImage(image, str(folder / "images" / "vol.nii.gz"))
    sitk.WriteImage(mask, str(folder / "masks" / "vol.nii.gz"))
    return folder


def _config(kind: str, root) -> TrainConfig:
    config = TrainConfig()
    config.model.name = "tiny_vit_test"
    config.run.device, config.run.tensorboard = "cpu", "off"
    if kind == "prompted":  # PNG slices, hybrid prompts, augmentation, accumulation, seed 3
        config.strategy.component, config.strategy.method = "encoder+decoder", "lora"
        config.task.mode, config.task.prompt = "prompted", "hybrid"
        config.data.train = str(write_disc_dataset(root / "a_train", 4, seed=1, size=48))
        config.data.val = str(write_disc_dataset(root / "a_val", 2, seed=2, size=48))
        config.data.augment = True
        config.optim.steps, config.optim.lr, config.optim.batch_size, config.optim.accumulation = 5, 3e-3, 2, 2
        config.eval.every, config.run.log_every, config.run.checkpoint_every = 5, 1, 5
        config.run.seed = 3
    else:  # a NIfTI volume sliced along z, empty-slice ratio 0.5, augmentation
        config.strategy.component, config.strategy.method = "decoder", "full"
        config.task.mode = "automatic"
        config.data.train = str(_volume_folder(root / "b_train", 1))
        config.data.val = str(_volume_folder(root / "b_val", 2))
        config.data.empty_slices, config.data.augment = "0.5", True
        config.optim.steps, config.optim.lr, config.optim.batch_size = 6, 3e-3, 3
        config.eval.every, config.run.log_every, config.run.checkpoint_every = 3, 1, 6
    return config


def _batches(config: TrainConfig, count: int, workers: int) -> list[dict]:
    """The first `count` micro-batches as the loop's DataLoader delivers them."""
    spec = get_spec(config.model.name)
    data = build_training_data(config.data, config.task, spec.image_size, spec.normalization, config.run.seed)
    o = config.optim
    order = StepBatches(len(data.train), config.run.seed, o.steps, o.batch_size, o.accumulation)
    loader = make_loader(PickedItems(TrainSamples(data.train, data.prompts, config.run.seed)), workers,
                         torch.device("cpu"), config.run.seed, batch_sampler=order)
    rows = []
    for batch, picks in zip((receive(b, torch.device("cpu")) for b in loader), order):
        assert batch["mask"].dtype == torch.int64
        row = {"picks": [list(p) for p in picks], "image": float(batch["image"].double().sum()),
               "mask": int(batch["mask"].sum())}
        for key in ("boxes", "points"):
            if batch.get(key) is not None:
                row[key] = float(batch[key].double().sum())
        rows.append(row)
        if len(rows) == count:
            break
    return rows


def _trained(config: TrainConfig, run) -> tuple[list[float], list[float]]:
    result = train(config, run)
    return ([r["loss"] for r in result.history if "loss" in r],
            [r["val_dice"] for r in result.history if "val_dice" in r])


@pytest.mark.parametrize("kind", ["prompted", "automatic"])
def test_workers_0_reproduces_the_previous_data_path(kind, tmp_path, one_thread):
    config = _config(kind, tmp_path)
    config.data.workers = 0
    pinned = PINNED[kind]
    batches = _batches(config, 4, workers=0)
    assert [b["picks"] for b in batches] == [b["picks"] for b in pinned["batches"]]
    for ours, theirs in zip(batches, pinned["batches"]):
        assert ours["mask"] == theirs["mask"]
        for key in ("image", "boxes", "points"):
            assert (key in ours) == (key in theirs)
            if key in theirs:
                assert ours[key] == pytest.approx(theirs[key], rel=1e-9), key
    losses, dice = _trained(config, tmp_path / "run")
    # Bit-identical on the machine that pinned them; another CPU may round differently.
    assert losses == pytest.approx(pinned["losses"], rel=1e-5, abs=1e-6)
    assert dice == pytest.approx(pinned["val_dice"], abs=1e-4)


def test_two_workers_give_the_same_batches_and_losses(tmp_path, one_thread):
    config = _config("prompted", tmp_path)
    config.data.workers = 0
    alone_batches = _batches(config, 6, workers=0)
    alone = _trained(config, tmp_path / "alone")
    config.data.workers = 2
    assert _batches(config, 6, workers=2) == alone_batches
    assert _trained(config, tmp_path / "workers") == alone  # exactly: same losses, same Dice


def test_workers_send_images_unpadded_and_one_channel(tmp_path, one_thread):
    """A worker's batch carries each gray image as its resized pixels, one channel (what
    crosses shared memory); `receive` builds the [B,3,S,S] input the model reads."""
    config = _config("automatic", tmp_path)
    spec = get_spec(config.model.name)
    data = build_training_data(config.data, config.task, spec.image_size, spec.normalization, config.run.seed)
    order = StepBatches(len(data.train), config.run.seed, 2, config.optim.batch_size)
    loader = make_loader(PickedItems(TrainSamples(data.train, data.prompts, config.run.seed)), 1,
                         torch.device("cpu"), config.run.seed, batch_sampler=order)
    sent = next(iter(loader))
    assert [type(image).__name__ for image in sent["image"]] == ["PendingImage"] * config.optim.batch_size
    assert all(image.resized.shape[0] == 1 for image in sent["image"])
    assert sent["mask"].dtype == torch.uint8
    got = receive(sent, torch.device("cpu"))
    size = spec.image_size
    assert got["image"].shape == (config.optim.batch_size, 3, size, size) and got["mask"].dtype == torch.int64
    picks = next(iter(order))
    item = PickedItems(TrainSamples(data.train, data.prompts, config.run.seed))
    for row, pick in enumerate(picks):
        assert torch.equal(got["image"][row], item[pick]["image"])  # built in this process: the same tensor
