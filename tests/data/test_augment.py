"""Augmentation: exact flips, joint image/mask geometry, seeds."""

from __future__ import annotations

import numpy as np
import pytest

from samtune.data.augment import (
    AugmentConfig,
    AugmentParams,
    affine_matrix,
    apply_augment,
    sample_params,
)
from samtune.errors import ConfigError


def _scene(height=40, width=50):
    image = np.zeros((height, width, 3), dtype=np.float32)
    image[..., 0] = np.arange(width)[None, :]  # red encodes the column
    image[..., 1] = np.arange(height)[:, None]  # green encodes the row
    mask = np.zeros((height, width), dtype=np.uint8)
    mask[5:15, 8:20] = 2  # rows 5..14, cols 8..19
    return image, mask


def _moved(params: AugmentParams, xy: tuple[float, float], height: int, width: int) -> tuple[int, int]:
    """Where input pixel (x, y) lands: output pixel p reads input pixel affine_matrix @ p."""
    x, y, _ = np.linalg.solve(affine_matrix(params, height, width), [xy[0], xy[1], 1.0])
    return int(np.rint(x)), int(np.rint(y))


def test_identity_leaves_everything_unchanged():
    image, mask = _scene()
    out_image, out_mask = apply_augment(AugmentParams(), image, mask)
    np.testing.assert_array_equal(out_image, image)
    np.testing.assert_array_equal(out_mask, mask)


def test_flips_by_hand():
    image, mask = _scene()
    params = AugmentParams(hflip=True, vflip=True)
    out_image, out_mask = apply_augment(params, image, mask)
    np.testing.assert_array_equal(out_image, image[::-1, ::-1])
    np.testing.assert_array_equal(out_mask, mask[::-1, ::-1])
    # x -> 49 - x, y -> 39 - y; the warp path agrees with the exact flip path for a flip-only map
    np.testing.assert_allclose(affine_matrix(params, 40, 50) @ [41.0, 34.0, 1.0], [8.0, 5.0, 1.0])


def test_rotation_by_90_degrees_moves_pixels_exactly():
    image, mask = _scene(31, 31)
    params = AugmentParams(angle=90.0)
    _, out_mask = apply_augment(params, image, mask)
    # a quarter turn about the centre of a square maps the mask onto np.rot90 of it
    candidates = [np.rot90(mask, 1), np.rot90(mask, -1)]
    assert any(np.array_equal(out_mask, c) for c in candidates)
    x, y = _moved(params, (8.0, 5.0), 31, 31)
    assert out_mask[y, x] == 2  # the corner pixel (8, 5) of the region lands on the region


def test_mask_and_image_move_together():
    image, mask = _scene()
    config = AugmentConfig(hflip=0.5, vflip=0.5, rotation=30.0, crop_scale=(0.7, 1.0), brightness=0.0, contrast=0.0)
    for seed in range(10):
        params = sample_params(config, np.random.default_rng(seed))
        out_image, out_mask = apply_augment(params, image, mask)
        assert set(np.unique(out_mask)) <= {0, 2}  # nearest: no blended labels
        x, y = _moved(params, (13.5, 9.5), 40, 50)  # the centre of the region stays on it
        assert out_mask[y, x] == 2
        # the image moved like the mask: red/green at a mask pixel name a source mask pixel
        source_col, source_row = out_image[y, x, 0], out_image[y, x, 1]
        assert mask[int(round(source_row)), int(round(source_col))] == 2


def test_intensity_jitter_by_hand():
    image = np.array([[[0.0], [1.0]], [[2.0], [3.0]]], dtype=np.float32)  # mean 1.5, range 3
    out, _ = apply_augment(AugmentParams(contrast=2.0, brightness=0.1), image)
    np.testing.assert_allclose(out[..., 0], [[-1.2, 0.8], [2.8, 4.8]], rtol=1e-6)


def test_sampling_is_seeded_and_bounded():
    config = AugmentConfig(rotation=10.0, crop_scale=(0.8, 0.9))
    first = sample_params(config, np.random.default_rng(5))
    assert first == sample_params(config, np.random.default_rng(5))
    draws = [sample_params(config, np.random.default_rng(s)) for s in range(50)]
    assert all(-10 <= d.angle <= 10 and 0.8 <= d.crop_scale <= 0.9 for d in draws)
    assert 10 < sum(d.hflip for d in draws) < 40
    assert not any(d.vflip for d in draws)


def test_bad_config():
    with pytest.raises(ConfigError, match="crop_scale"):
        AugmentConfig(crop_scale=(0.5, 1.2))
