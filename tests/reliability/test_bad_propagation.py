"""Bad propagation input (issue 17): one line naming the value, exit 2, nothing written."""

from __future__ import annotations

import numpy as np
import pytest

from samtune.data.geometry import Geometry
from samtune.data.readers import write_image

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def volume(tmp_path_factory):
    root = tmp_path_factory.mktemp("volume")
    array = np.full((6, 40, 48), 50, dtype=np.int16)
    array[:, 10:30, 12:36] = 200
    write_image(root / "ct.nii.gz", array, Geometry((1.0, 1.0, 3.0), (0.0, 0.0, 0.0), tuple(np.eye(3).ravel())))
    return root / "ct.nii.gz"



def zero_shot(volume, checkpoint, out):
    return ["predict", volume, "--model", "tiny_vit_test", "--checkpoint", checkpoint, "--out", out]


def test_start_slice_outside_the_volume(refused, volume, tiny_checkpoint, tmp_path):
    argv = zero_shot(volume, tiny_checkpoint, tmp_path / "out") + ["--slice", "6", "--box", "12", "10", "36", "30"]
    refused(argv, watch=[tmp_path, volume.parent], names=["slice 6", "0..5"])


def test_box_outside_the_slice(refused, volume, tiny_checkpoint, tmp_path):
    argv = zero_shot(volume, tiny_checkpoint, tmp_path / "out") + ["--slice", "2", "--box", "12", "10", "60", "30"]
    refused(argv, watch=[tmp_path, volume.parent], names=["(12, 10, 60, 30)", "48x40"])


def test_refine_with_an_automatic_run_and_no_promptable_model(refused, volume, automatic_run, tmp_path):
    argv = ["predict", volume, "--run", automatic_run, "--refine", "--out", tmp_path / "out"]
    refused(argv, watch=[tmp_path, volume.parent, automatic_run], names=["--refine", str(automatic_run), "--model"])


def test_refine_with_a_prompted_run(refused, volume, prompted_run, tmp_path):
    argv = ["predict", volume, "--run", prompted_run, "--refine", "--out", tmp_path / "out"]
    refused(argv, watch=[tmp_path, volume.parent], names=["--refine", str(prompted_run)])


@pytest.mark.parametrize("item, named", [("min_iou=high", "'high'"), ("max_leak=2", "max_leak"),
                                         ("min_area=off", "min_area"), ("min_iou=1.5", "min_iou")])
def test_bad_stop_rule(refused, volume, tiny_checkpoint, tmp_path, item, named):
    argv = zero_shot(volume, tiny_checkpoint, tmp_path / "out") + ["--slice", "2", "--box", "12", "10", "36", "30",
                                                                  "--stop", item]
    refused(argv, watch=[tmp_path, volume.parent], names=[named])


def test_run_and_model_without_refine(refused, volume, automatic_run, tmp_path):
    argv = ["predict", volume, "--run", automatic_run, "--model", "lite_medsam", "--out", tmp_path / "out"]
    refused(argv, watch=[tmp_path, volume.parent], names=["--run", "--model", "--refine"])


@pytest.mark.parametrize("window", ["40", "40,-5", "lung2"])
def test_bad_window(refused, volume, tiny_checkpoint, tmp_path, window):
    argv = zero_shot(volume, tiny_checkpoint, tmp_path / "out") + ["--slice", "2", "--box", "12", "10", "36", "30",
                                                                  "--window", window]
    refused(argv, watch=[tmp_path, volume.parent], names=[f"--window {window}"])
