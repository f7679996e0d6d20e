"""3D -> 2D slices with provenance, the empty-slice policy, and restacking."""

from __future__ import annotations

import numpy as np
import pytest

from samtune.assets import mni_template
from samtune.data.geometry import Geometry
from samtune.data.readers import read_image, write_image
from samtune.data.slicing import foreground_per_slice, restack, select_slices, slice_refs, take_slice
from samtune.errors import DataError

GEOMETRY = Geometry((0.5, 0.8, 2.5), (-1.0, 2.0, 3.0), (1, 0, 0, 0, 1, 0, 0, 0, 1))


def test_refs_and_slices_along_each_axis():
    volume = np.arange(2 * 3 * 4).reshape(2, 3, 4)  # [z, y, x]
    refs = slice_refs("c", volume.shape, GEOMETRY, axis=1)
    assert [r.index for r in refs] == [0, 1, 2]
    assert refs[0].slice_shape == (2, 4)  # [z, x]
    assert refs[0].pixel_spacing == (2.5, 0.5)
    np.testing.assert_array_equal(take_slice(volume, refs[1].axis, refs[1].index), volume[:, 1, :])
    axial = slice_refs("c", volume.shape, GEOMETRY, axis=0)
    assert len(axial) == 2 and axial[1].pixel_spacing == (0.8, 0.5)
    np.testing.assert_array_equal(take_slice(volume, axial[1].axis, axial[1].index), volume[1])
    flat = slice_refs("img", (5, 6), Geometry.identity(2), axis=2)  # axis ignored for 2D
    assert len(flat) == 1 and flat[0].axis is None and flat[0].slice_shape == (5, 6)
    with pytest.raises(DataError, match="slice axis must be 0"):
        slice_refs("c", volume.shape, GEOMETRY, axis=3)


def test_select_slices_policies():
    has_fg = np.array([False, True, False, False, True, False])
    rng = np.random.default_rng(0)
    assert select_slices(has_fg, "keep", rng) == [0, 1, 2, 3, 4, 5]
    assert select_slices(has_fg, "drop", rng) == [1, 4]
    half = select_slices(has_fg, 0.5, np.random.default_rng(3))  # round(0.5 * 2) = 1 empty slice
    assert len(half) == 3 and {1, 4} <= set(half)
    assert half == select_slices(has_fg, 0.5, np.random.default_rng(3))  # seeded
    assert select_slices(has_fg, 10.0, rng) == [0, 1, 2, 3, 4, 5]  # capped at the 4 empty ones
    with pytest.raises(DataError, match="empty-slice policy must be"):
        select_slices(has_fg, "some", rng)


def test_foreground_per_slice():
    mask = np.zeros((3, 2, 2), dtype=np.uint8)
    mask[1, 0, 1] = 1
    assert foreground_per_slice(mask, 0).tolist() == [False, True, False]
    assert foreground_per_slice(mask, 2).tolist() == [False, True]
    assert foreground_per_slice(mask[1], None).tolist() == [True]


def test_restack_round_trip_with_geometry(tmp_path):
    volume = np.random.default_rng(0).integers(0, 3, size=(4, 5, 6)).astype(np.uint8)
    for axis in (0, 1, 2):
        refs = slice_refs("c", volume.shape, GEOMETRY, axis=axis)
        shuffled = [(r, take_slice(volume, r.axis, r.index)) for r in refs][::-1]
        rebuilt, geometry = restack(shuffled)
        np.testing.assert_array_equal(rebuilt, volume)
        assert geometry == GEOMETRY
    write_image(tmp_path / "pred.nii.gz", rebuilt, geometry)
    back = read_image(tmp_path / "pred.nii.gz")
    np.testing.assert_array_equal(back.array, volume)
    assert back.geometry.close_to(GEOMETRY)


def test_restack_refuses_missing_or_duplicate_slices():
    volume = np.zeros((3, 2, 2))
    pairs = [(r, take_slice(volume, r.axis, r.index)) for r in slice_refs("c", volume.shape, GEOMETRY)]
    with pytest.raises(DataError, match=r"case c: 1 slice\(s\) missing, e.g. \[1\]"):
        restack([pairs[0], pairs[2]])
    with pytest.raises(DataError, match="slice 0 given twice"):
        restack([pairs[0], pairs[0], pairs[1], pairs[2]])
    with pytest.raises(DataError, match=r"slice 1: shape \(3, 3\) is not \(2, 2\)"):
        restack([pairs[0], (pairs[1][0], np.zeros((3, 3))), pairs[2]])


def test_mni_volume_slices_and_restacks():
    wm = read_image(mni_template("wm"))
    mask = (wm.array >= 128).astype(np.uint8)  # probability 0.5 on the uint8 scale
    refs = slice_refs("mni", mask.shape, wm.geometry, axis=0)
    assert len(refs) == 189 and refs[0].slice_shape == (233, 197)
    fg = foreground_per_slice(mask, 0)
    assert 0 < fg.sum() < 189  # top and bottom slices hold no white matter
    rebuilt, geometry = restack((r, take_slice(mask, r.axis, r.index)) for r in refs)
    np.testing.assert_array_equal(rebuilt, mask)
    assert geometry == wm.geometry
