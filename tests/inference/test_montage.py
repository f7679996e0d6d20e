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


def test_radiological_view_and_prompt_slice_mark():
    """A RAS-stored volume (ITK direction diag(-1, -1, 1)): rows run posterior->anterior and
    columns towards the patient's right, so both flip for the radiological axial view."""
    from samtune.data.geometry import Geometry
    from samtune.data.orientation import radiological_slice

    ras = Geometry((1.0, 1.0, 1.0), (0.0, 0.0, 0.0), (-1.0, 0, 0, 0, -1.0, 0, 0, 0, 1.0))
    tile = np.arange(6).reshape(2, 3)
    turned, note = radiological_slice(tile, ras, axis=0)
    np.testing.assert_array_equal(turned, [[5, 4, 3], [2, 1, 0]])
    assert note == "radiological view (axial): anterior up, patient's right on the viewer's left"
    lps = Geometry((1.0, 1.0, 1.0), (0.0, 0.0, 0.0), (1.0, 0, 0, 0, 1.0, 0, 0, 0, 1.0))
    np.testing.assert_array_equal(radiological_slice(tile, lps, axis=0)[0], tile)  # already radiological
    np.testing.assert_array_equal(radiological_slice(tile, None, axis=0)[0], tile)  # 2D photo: as stored

    volume = np.zeros((30, 20, 24))
    labels = np.zeros((30, 20, 24), dtype=np.uint8)
    labels[10:20, 2:6, 2:6] = 1  # in the stored frame: top-left corner
    grid = montage(volume, labels, axis=0, tiles=4, columns=4, geometry=ras, mark=17)
    assert grid.shape == (20 + 14, 4 * 24, 3)  # one row of tiles + the note strip
    # slices 10, 13, 16->17 (the mark replaces the nearest), 19; the label shows bottom-right
    assert tuple(grid[20 - 3, 24 - 3]) == (255, 64, 64)  # stored row 2, column 2: mirrored both ways
    assert not grid[14:18, 2:6].any() and not grid[2:6, 18:22].any()  # not mirrored one way only
    assert tuple(grid[10, 2 * 24]) == (255, 255, 0)  # the prompt tile's frame
