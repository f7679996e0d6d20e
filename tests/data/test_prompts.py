"""Prompts from masks: hand-computed boxes and points, regions, seeds."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from samtune.data.prompts import PromptConfig, inner_pixels, mask_box, prompts_from_mask, regions
from samtune.errors import ConfigError


def _two_blobs() -> np.ndarray:
    mask = np.zeros((20, 30), dtype=np.uint8)
    mask[2:7, 3:13] = 1  # 5 x 10 = 50 px, class 1
    mask[10:12, 20:22] = 1  # 4 px, class 1
    mask[15, 25] = 1  # 1 px, class 1
    mask[14:19, 2:6] = 2  # 20 px, class 2
    mask[0, 29] = 1  # 1 px, class 1 (fourth component)
    return mask


def test_tight_boxes_by_hand():
    config = PromptConfig(kind="box", box_jitter=0.0)
    prompts = prompts_from_mask(_two_blobs(), config, np.random.default_rng(0))
    # class 1: components by size 50, 4, then the first 1-px one in raster order; class 2: one
    assert prompts.class_ids.tolist() == [1, 1, 1, 2]
    np.testing.assert_array_equal(
        prompts.boxes, [[3, 2, 12, 6], [20, 10, 21, 11], [29, 0, 29, 0], [2, 14, 5, 18]]
    )
    assert prompts.targets.shape == (4, 20, 30)
    assert prompts.targets.sum(axis=(1, 2)).tolist() == [50, 4, 1, 20]
    assert prompts.points is None and prompts.point_labels is None


def test_per_class_box_covers_all_components():
    prompts = prompts_from_mask(_two_blobs(), PromptConfig(per="class", box_jitter=0.0), np.random.default_rng(0))
    np.testing.assert_array_equal(prompts.boxes, [[3, 0, 29, 15], [2, 14, 5, 18]])
    assert prompts.targets[0].sum() == 56


def test_box_jitter_pushes_sides_out_by_at_most_ten_percent():
    region = np.zeros((100, 100), dtype=bool)
    region[40:60, 30:80] = True  # tight box (30, 40, 79, 59); width 50, height 20
    for seed in range(20):
        x0, y0, x1, y1 = mask_box(region, jitter=0.1, rng=np.random.default_rng(seed))
        assert 25.0 <= x0 <= 30.0 and 38.0 <= y0 <= 40.0
        assert 79.0 <= x1 <= 84.0 and 59.0 <= y1 <= 61.0
    boxes = {tuple(mask_box(region, jitter=0.1, rng=np.random.default_rng(s))) for s in range(5)}
    assert len(boxes) == 5  # the jitter is random...
    assert tuple(mask_box(region, jitter=0.1, rng=np.random.default_rng(3))) == tuple(mask_box(region, jitter=0.1, rng=np.random.default_rng(3)))


def test_box_is_clipped_to_the_image():
    region = np.zeros((10, 10), dtype=bool)
    region[0:10, 0:10] = True
    np.testing.assert_array_equal(mask_box(region, jitter=0.1, rng=np.random.default_rng(0)), [0, 0, 9, 9])


def test_inner_points_come_from_the_innermost_ten_percent():
    region = np.zeros((41, 41), dtype=bool)
    region[5:36, 5:36] = True  # 31 x 31 square, centre (20, 20)
    rows, cols = inner_pixels(region, 0.1)
    distance = ndimage.distance_transform_edt(region)
    cut = np.quantile(distance[region], 0.9, method="lower")
    assert (distance[rows, cols] >= cut).all()
    assert len(rows) >= 0.1 * region.sum()
    # centre pixels are the farthest from the border
    assert (np.abs(rows - 20) <= 5).all() and (np.abs(cols - 20) <= 5).all()


def test_points_study_defaults_and_seed():
    mask = _two_blobs()
    config = PromptConfig.study("point")
    assert (config.max_regions, config.num_points, config.inner_fraction, config.box_jitter) == (3, 5, 0.1, 0.1)
    prompts = prompts_from_mask(mask, config, np.random.default_rng(7))
    assert prompts.points.shape == (4, 5, 2) and prompts.boxes is None
    assert (prompts.point_labels == 1).all()
    for points, target in zip(prompts.points, prompts.targets):
        xs, ys = points[:, 0].astype(int), points[:, 1].astype(int)
        assert target[ys, xs].all()  # (x, y) = (column, row) inside its region
    again = prompts_from_mask(mask, config, np.random.default_rng(7))
    np.testing.assert_array_equal(prompts.points, again.points)
    other = prompts_from_mask(mask, config, np.random.default_rng(8))
    assert not np.array_equal(prompts.points[0], other.points[0])


def test_hybrid_with_negatives():
    mask = _two_blobs()
    config = PromptConfig(kind="hybrid", num_points=2, num_negatives=3, max_regions=1)
    prompts = prompts_from_mask(mask, config, np.random.default_rng(0))
    assert prompts.boxes.shape == (2, 4) and prompts.points.shape == (2, 5, 2)
    assert prompts.point_labels.tolist() == [[1, 1, 0, 0, 0]] * 2
    for points, labels, target in zip(prompts.points, prompts.point_labels, prompts.targets):
        xs, ys = points[:, 0].astype(int), points[:, 1].astype(int)
        assert (target[ys, xs] == (labels == 1)).all()


def test_empty_mask_gives_no_prompts():
    prompts = prompts_from_mask(np.zeros((8, 9), np.uint8), PromptConfig.study("hybrid"), np.random.default_rng(0))
    assert len(prompts) == 0
    assert prompts.boxes.shape == (0, 4) and prompts.points.shape == (0, 5, 2)
    assert prompts.targets.shape == (0, 8, 9)


def test_regions_limit():
    assert len(regions(_two_blobs(), max_regions=None)) == 5
    assert len(regions(_two_blobs(), max_regions=1)) == 2


def test_bad_config():
    with pytest.raises(ConfigError, match="prompt kind must be box, point or hybrid"):
        PromptConfig(kind="scribble")
    with pytest.raises(ConfigError, match="inner_fraction"):
        PromptConfig(inner_fraction=0.0)
