"""The training Dataset: shapes, values, determinism, slice policy, one read per volume."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import samtune.data.case_io as case_io
from samtune.assets import mni_template
from samtune.data.augment import AugmentConfig
from samtune.data.dataset import SliceDataset, SliceDatasetConfig
from samtune.data.geometry import Geometry
from samtune.data.labels import LabelMap
from samtune.data.preprocess import IMAGENET_MEAN, IMAGENET_STD
from samtune.data.prompts import PromptConfig
from samtune.data.readers import read_image, write_image
from samtune.data.sources import Case, load_source
from samtune.errors import DataError

ZONES = LabelMap.from_values({"central": 254, "peripheral": 255})


def test_prostate_samples(prostate_dir):
    source = load_source(prostate_dir / "train_5shot.csv")
    config = SliceDatasetConfig(256, "minmax", prompts=PromptConfig.study("box"))
    dataset = SliceDataset(source, config, labels=ZONES, train=False)
    assert len(dataset) == 5
    sample = dataset[0]
    assert sample["image"].shape == (3, 256, 256) and sample["image"].dtype == torch.float32
    assert sample["image"].min() == 0.0 and 0.9 < sample["image"].max() <= 1.0  # bilinear 384 -> 256
    assert sample["mask"].shape == (256, 256) and sample["mask"].dtype == torch.int64
    stored = read_image(prostate_dir / "masks/BIDMC05_32.png", role="mask").array
    expected = ZONES.apply(stored)
    # 384 -> 256 is nearest on exact integer indices: every model pixel is a stored pixel
    rows = (2 * np.arange(256) + 1) * 384 // 512
    np.testing.assert_array_equal(sample["mask"].numpy(), expected[rows][:, rows])
    assert sample["ref"].case_id == "BIDMC05_32" and sample["ref"].axis is None
    assert sample["boxes"].shape[1] == 4 and len(sample["boxes"]) == len(sample["prompt_classes"])
    for box, target in zip(sample["boxes"], sample["prompt_masks"]):
        rows_fg, cols_fg = torch.nonzero(target, as_tuple=True)
        assert box[0] <= cols_fg.min() and box[2] >= cols_fg.max()  # box holds its region


def test_imagenet_normalisation_of_8bit_slices(prostate_dir):
    source = load_source(prostate_dir / "train_5shot.csv")
    dataset = SliceDataset(source, SliceDatasetConfig(384, "imagenet"), train=False)
    image = read_image(source.cases[0].images[0]).array.astype(np.float64)
    expected_red = (image - IMAGENET_MEAN[0]) / IMAGENET_STD[0]  # 384 -> 384: no resize
    np.testing.assert_allclose(dataset[0]["image"][0].numpy(), expected_red, rtol=1e-5, atol=1e-5)


def test_deterministic_given_seed_and_epoch(prostate_dir):
    source = load_source(prostate_dir / "train_5shot.csv")
    config = SliceDatasetConfig(128, "minmax", augment=AugmentConfig(), prompts=PromptConfig.study("hybrid"), seed=3)
    a, b = SliceDataset(source, config), SliceDataset(source, config)
    first, second = a[2], b[2]
    for key in ("image", "mask", "boxes", "points"):
        assert torch.equal(first[key], second[key]), key
    a.set_epoch(1)
    assert not torch.equal(a[2]["image"], first["image"])  # a new draw each epoch


def _volume_case(folder, name, foreground_slices):
    volume = np.random.default_rng(0).normal(100, 20, size=(6, 8, 10)).astype(np.float32)
    mask = np.zeros((6, 8, 10), dtype=np.uint8)
    for index in foreground_slices:
        mask[index, 2:5, 3:7] = 1
    geometry = Geometry((0.7, 0.7, 3.0), (0, 0, 0), (1, 0, 0, 0, 1, 0, 0, 0, 1))
    image = write_image(folder / f"{name}_0000.nii.gz", volume, geometry)
    label = write_image(folder / f"{name}.nii.gz", mask, geometry)
    return Case(name, (image,), label, name), volume


def test_volume_slices_empty_policy_and_single_read(tmp_path, monkeypatch):
    case, volume = _volume_case(tmp_path, "v", foreground_slices=[2, 3])
    calls = []
    original = case_io.read_image
    monkeypatch.setattr(case_io, "read_image", lambda path, role="image": calls.append(path) or original(path, role))
    base = SliceDatasetConfig(16, "minmax", axis=0)
    keep = SliceDataset([case], base, train=True)
    assert [r.index for r in keep.refs] == [0, 1, 2, 3, 4, 5]
    for index in range(len(keep)):
        keep[index]
    assert len(calls) == 2  # image and mask read once for all six slices
    drop = SliceDataset([case], SliceDatasetConfig(16, "minmax", empty_slices="drop"), train=True)
    assert [r.index for r in drop.refs] == [2, 3]
    ratio = SliceDataset([case], SliceDatasetConfig(16, "minmax", empty_slices=1.0), train=True)
    assert len(ratio) == 4 and {2, 3} <= {r.index for r in ratio.refs}
    evaluation = SliceDataset([case], SliceDatasetConfig(16, "minmax", empty_slices="drop"), train=False)
    assert len(evaluation) == 6  # evaluation never drops slices
    # one intensity range per volume: slice 0 is scaled by the volume's min/max, not its own
    lo, hi = float(volume.min()), float(volume.max())
    same_size = SliceDataset([case], SliceDatasetConfig(10, "minmax"), train=False)  # 8x10 -> 8x10
    np.testing.assert_allclose(same_size[0]["image"][0, :8].numpy(), (volume[0] - lo) / (hi - lo), rtol=1e-5)
    assert same_size[0]["image"][:, 8:].abs().max() == 0  # padding rows


def test_mni_white_matter_dataset():
    gm = read_image(mni_template("wm"))
    case = Case("mni", (mni_template("t1"),), mni_template("wm"), "mni")
    config = SliceDatasetConfig(256, "minmax", axis=0, empty_slices="drop", prompts=PromptConfig.study("box"))
    dataset = SliceDataset([case], config, labels=LabelMap.binary(threshold=128))
    has_fg = (gm.array >= 128).any(axis=(1, 2))
    assert len(dataset) == int(has_fg.sum())
    sample = dataset[len(dataset) // 2]
    assert sample["ref"].slice_shape == (233, 197)
    assert sample["transform"].resized_size == (256, 216)  # 197 * 256 / 233 = 216.4
    assert sample["mask"][:, 216:].sum() == 0 and sample["mask"].sum() > 0


def test_channel_count_must_fit_the_model(tmp_path):
    geometry = Geometry((1.0, 1.0, 1.0), (0, 0, 0), (1, 0, 0, 0, 1, 0, 0, 0, 1))
    images = tuple(write_image(tmp_path / f"c_{i:04d}.nii.gz", np.zeros((2, 4, 4), np.float32) + i, geometry)
                   for i in range(2))
    mask = np.zeros((2, 4, 4), np.uint8)
    mask[0, 1, 1] = 1
    label = write_image(tmp_path / "c.nii.gz", mask, geometry)
    case = Case("c", images, label, "c", "labelsTr/c.nii.gz")
    with pytest.raises(DataError, match="labelsTr/c.nii.gz: image has 2 channels; SAM-family models take 1 or 3"):
        SliceDataset([case], SliceDatasetConfig(8, "minmax"))
    dataset = SliceDataset([case], SliceDatasetConfig(8, "minmax", channels=(1,)))
    assert len(dataset) == 2
