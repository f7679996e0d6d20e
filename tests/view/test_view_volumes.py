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


def test_accept_writes_the_stored_label_values(tmp_path):
    from samtune.data.readers import read_image
    from samtune.view.catalog import build_catalog
    from samtune.view.corrections import save_correction

    for name in ("images", "labels"):
        (tmp_path / name).mkdir()
    geometry = Geometry((0.5, 0.5, 2.0), (1.0, 2.0, 3.0), tuple(np.eye(3).ravel()))
    gt = np.zeros((3, 4, 5), np.uint8)
    gt[0, 0, 0], gt[1, 1, 1] = 254, 255  # prostate zones as the study's files store them
    write_image(tmp_path / "images" / "p.nii.gz", np.ones((3, 4, 5), np.int16), geometry)
    write_image(tmp_path / "labels" / "p.nii.gz", gt, geometry)
    catalog = build_catalog(tmp_path / "images", gt=tmp_path / "labels")
    opened = open_case(catalog.cases["p"])
    opened.set_work_slice(0, 2, np.full((4, 5), 2, np.uint8))  # class 2 painted over slice 2
    mask, _ = save_correction(tmp_path / "fixes", opened, catalog)
    expected = gt.copy()
    expected[2] = 255
    saved = read_image(mask)
    np.testing.assert_array_equal(saved.array, expected)
    assert saved.geometry.close_to(geometry) and not opened.dirty
