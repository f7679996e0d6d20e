"""`samtune predict --run AUTOMATIC --refine --model NAME` and the propagation flags, end to end
with tiny models (the real-data figures are in tests/inference/test_ct_propagation.py)."""

from __future__ import annotations

import numpy as np
import pytest

from samtune.cli.main import main
from samtune.data.geometry import Geometry
from samtune.data.readers import read_image, write_image
from samtune.inference.predictor import Predictor
from samtune.inference.refine import refine_starts

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def volume(tmp_path_factory):
    root = tmp_path_factory.mktemp("volume")
    yy, xx = np.mgrid[:48, :48]
    array = np.full((5, 48, 48), 50, dtype=np.int16)
    for z in range(5):
        array[z][(yy - 24) ** 2 + (xx - 20) ** 2 <= (6 + 2 * z) ** 2] = 200
    write_image(root / "ct.nii.gz", array, Geometry((1.0, 1.0, 3.0), (0.0, 0.0, 0.0), tuple(np.eye(3).ravel())))
    return root / "ct.nii.gz"



def test_refine_propagates_from_the_largest_automatic_slice(volume, automatic_run, tiny_checkpoint, tmp_path, capsys):
    automatic = Predictor.from_run(automatic_run).predict_volume(read_image(volume)).array
    starts = refine_starts(automatic)
    out = tmp_path / "out"
    code = main(["predict", str(volume), "--run", str(automatic_run), "--refine", "--model", "tiny_vit_test",
                 "--checkpoint", str(tiny_checkpoint), "--out", str(out), "--stop", "min_iou=off"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "refined by propagation" in printed
    for start in starts:  # each class starts where the automatic prediction has most pixels
        areas = (automatic == start.label).sum(axis=(1, 2))
        assert areas[start.slice] == areas.max()
        assert f"class {start.label} from slice {start.slice}" in printed
    labels = read_image(out / "ct.nii.gz")
    assert labels.array.shape == automatic.shape
    assert set(np.unique(labels.array)) <= {0} | {s.label for s in starts}


def test_propagation_flags_reach_the_configuration(volume, tiny_checkpoint, tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["predict", str(volume), "--model", "tiny_vit_test", "--checkpoint", str(tiny_checkpoint),
                 "--slice", "2", "--box", "8", "10", "34", "38", "--out", str(out), "--max-slices", "1",
                 "--margin", "3", "--mask-prompt", "--largest-component", "--stop", "min_area=1"])
    assert code == 0
    assert "propagated from slice 2 over slices" in capsys.readouterr().out
    labels = read_image(out / "ct.nii.gz").array
    assert not labels[0].any() and not labels[4].any()  # at most 1 slice each way from slice 2
