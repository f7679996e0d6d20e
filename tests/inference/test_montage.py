"""Montage PNGs of labelled volumes: which slices, and the grid."""

from __future__ import annotations

import numpy as np

from samtune.inference.montage import montage, montage_slices


def test_slices_span_the_labelled_range_or_the_whole_volume():
    labels = np.zeros((30, 8, 9), dtype=np.uint8)
    assert montage_slices(labels, 0, 4) == [0, 10, 19, 29]
    labels[5:10, 2, 2] = 1
    assert montage_slices(labels, 0, 16) == [5, 6, 7, 8, 9]
    assert montage_slices(labels, 0, 3) == [5, 7, 9]
    assert montage_slices(labels, 2, 16) == [2]


def test_grid_shape_and_overlay_colour():
    volume = np.tile(np.linspace(0, 100, 20 * 24).reshape(20, 24), (6, 1, 1))
    labels = np.zeros((6, 20, 24), dtype=np.uint8)
    labels[:, 12:18, 14:20] = 1
    grid = montage(volume, labels, axis=0, tiles=6, columns=4)
    assert grid.shape == (2 * 20, 4 * 24, 3) and grid.dtype == np.uint8
    assert not grid[20:, 48:].any()  # the two unused tiles stay black
    assert tuple(grid[17, 19]) == (255, 64, 64)  # class 1's outline colour, first tile
    assert tuple(grid[20 + 17, 24 + 19]) == (255, 64, 64)  # sixth tile (row 1, column 1)
