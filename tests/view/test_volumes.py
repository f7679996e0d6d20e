"""Labels as the page holds them: ranks 1..K of the stored values, checked against the image grid."""

from __future__ import annotations

import numpy as np
import pytest

from samtune.data.geometry import Geometry
from samtune.data.readers import write_image
from samtune.errors import DataError
from samtune.view.catalog import ViewCase
from samtune.view.volumes import compact_labels, open_case


def test_compact_labels_ranks_stored_values():
    ranks, values = compact_labels(np.array([[0, 7, 3], [3, 0, 7]], np.int16), "m.nii.gz")
    assert values == [3, 7]
    np.testing.assert_array_equal(ranks, [[0, 2, 1], [1, 0, 2]])
    assert ranks.dtype == np.uint8
    with pytest.raises(DataError, match="m.nii.gz holds non-integer values"):
        compact_labels(np.array([0.0, 0.5]), "m.nii.gz")
    with pytest.raises(DataError, match="300 distinct values"):
        compact_labels(np.arange(301).reshape(1, 301), "m.nii.gz")


def test_open_case_classes_and_grid(tmp_path):
    geometry = Geometry((1.0, 1.0, 3.0), (0.0, 0.0, 0.0), tuple(np.eye(3).ravel()))
    image = np.zeros((4, 5, 6), np.int16)
    gt = np.zeros((4, 5, 6), np.uint8)
    gt[1, 1, 1], gt[2, 2, 2] = 10, 20
    pred = np.zeros((4, 5, 6), np.uint8)
    pred[1, 1, 1], pred[2, 2, 2], pred[3, 3, 3] = 1, 2, 3  # one class more than the ground truth
    for name, array in (("img", image), ("gt", gt), ("pred", pred)):
        write_image(tmp_path / f"{name}.nii.gz", array, geometry)
    opened = open_case(ViewCase("c", tmp_path / "img.nii.gz", tmp_path / "gt.nii.gz", tmp_path / "pred.nii.gz"))
    assert opened.values == [10, 20, 3] and opened.spacing == (3.0, 1.0, 1.0)
    np.testing.assert_array_equal(opened.work, pred)  # the correction starts as the prediction
    assert opened.gt[2, 2, 2] == 2 and not opened.dirty
    write_image(tmp_path / "small.nii.gz", gt[:3], geometry)
    with pytest.raises(DataError, match=r"small.nii.gz has shape \[3, 5, 6\] but its image"):
        open_case(ViewCase("c", tmp_path / "img.nii.gz", tmp_path / "small.nii.gz"))
