"""The demo picture draws the prompt box over exactly the pixels the model's box covers."""

from __future__ import annotations

import numpy as np

from samtune.data.prompts import mask_box
from samtune.inference.comparison import _oriented_box


def test_the_drawn_box_covers_the_mask_box_inclusively():
    mask = np.zeros((20, 30), dtype=bool)
    mask[4:9, 10:17] = True  # rows 4..8, columns 10..16
    box = mask_box(mask)
    assert box == (10.0, 4.0, 16.0, 8.0)  # inclusive ends
    # drawn from x0 - 0.5 to x1 + 0.5: the pixel edges around columns 10..16 and rows 4..8
    assert _oriented_box(box, mask.shape, None, 0) == (10, 4, 17, 9)


def test_a_one_pixel_box_is_drawn_one_pixel_wide():
    assert _oriented_box((3.0, 2.0, 3.0, 2.0), (10, 10), None, 0) == (3, 2, 4, 3)
