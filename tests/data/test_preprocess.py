"""Normalisation and the resize-pad transform, with hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from samtune.data.preprocess import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    ResizePad,
    intensity_range,
    nearest_indices,
    normalize_intensity,
    prepare_image,
)
from samtune.errors import DataError

MEAN = np.asarray(IMAGENET_MEAN)
STD = np.asarray(IMAGENET_STD)


def test_minmax_gray_is_replicated_to_three_channels():
    out = normalize_intensity(np.array([[0, 5], [10, 20]], dtype=np.int16), "minmax")
    assert out.shape == (2, 2, 3) and out.dtype == np.float32
    for channel in range(3):
        np.testing.assert_allclose(out[:, :, channel], [[0, 0.25], [0.5, 1.0]])


def test_minmax_constant_image_is_zeros():
    out = normalize_intensity(np.full((3, 4), 7.5), "minmax")
    np.testing.assert_array_equal(out, np.zeros((3, 4, 3), np.float32))


def test_imagenet_uint8_used_as_is():
    out = normalize_intensity(np.array([[0, 255]], dtype=np.uint8), "imagenet")
    np.testing.assert_allclose(out[0, 0], -MEAN / STD, rtol=1e-6)
    np.testing.assert_allclose(out[0, 1], (255 - MEAN) / STD, rtol=1e-6)
    # -2.1179 and 2.2489 for the red channel, by hand
    assert out[0, 0, 0] == pytest.approx(-123.675 / 58.395, rel=1e-6)


def test_imagenet_uint8_not_stretched():
    # A dark 8-bit image keeps its values: 10 stays 10, not 255.
    out = normalize_intensity(np.array([[0, 10]], dtype=np.uint8), "imagenet")
    np.testing.assert_allclose(out[0, 1], (10 - MEAN) / STD, rtol=1e-6)


def test_imagenet_16bit_is_minmaxed_to_255():
    out = normalize_intensity(np.array([[100, 600, 1100]], dtype=np.uint16), "imagenet")
    np.testing.assert_allclose(out[0, 0], (0 - MEAN) / STD, rtol=1e-6)
    np.testing.assert_allclose(out[0, 1], (127.5 - MEAN) / STD, rtol=1e-6)
    np.testing.assert_allclose(out[0, 2], (255 - MEAN) / STD, rtol=1e-6)


def test_ct_window_clips_before_minmax():
    # level 40, width 400 -> [-160, 240]
    image = np.array([[-1000.0, 40.0], [240.0, 1000.0]])
    out = normalize_intensity(image, "minmax", window=(40, 400))
    np.testing.assert_allclose(out[:, :, 0], [[0.0, 0.5], [1.0, 1.0]])


def test_mr_percentiles_clip():
    image = np.arange(101, dtype=np.float64).reshape(1, 101)  # percentile p is value p
    out = normalize_intensity(image, "minmax", percentiles=(10, 90))
    assert out[0, 0, 0] == 0.0 and out[0, 10, 0] == 0.0
    assert out[0, 50, 0] == pytest.approx(0.5)
    assert out[0, 90, 0] == 1.0 and out[0, 100, 0] == 1.0


def test_rgba_drops_alpha_and_keeps_colour_balance():
    image = np.zeros((1, 2, 4), dtype=np.uint8)
    image[0, 0] = (10, 20, 30, 0)
    image[0, 1] = (40, 50, 60, 255)
    out = normalize_intensity(image, "minmax")
    # global min 10, max 60 over the RGB channels only (alpha 255 ignored)
    np.testing.assert_allclose(out[0, 0], [0.0, 0.2, 0.4])
    np.testing.assert_allclose(out[0, 1], [0.6, 0.8, 1.0])


@pytest.mark.parametrize(
    "image, kwargs, message",
    [
        (np.zeros((2, 2, 5)), {}, "5 channels"),
        (np.zeros((2, 2, 2, 2)), {}, "slice volumes"),
        (np.array([[0.0, np.nan]]), {}, "NaN"),
        (np.zeros((2, 2)), {"window": (40, 0)}, "width must be positive"),
        (np.zeros((2, 2)), {"percentiles": (99, 1)}, "percentiles"),
    ],
)
def test_bad_images_raise_data_error(image, kwargs, message):
    with pytest.raises(DataError, match=message):
        normalize_intensity(image, "minmax", **kwargs)


def test_unknown_normalization():
    with pytest.raises(DataError, match="unknown normalization 'zscore'"):
        normalize_intensity(np.zeros((2, 2)), "zscore")


@pytest.mark.parametrize(
    "size, image_size, expected",
    [((384, 384), 256, (256, 256)), ((300, 400), 1024, (768, 1024)), ((5, 7), 10, (7, 10)),
     ((400, 300), 1024, (1024, 768)), ((197, 233), 256, (216, 256))],
)
def test_resized_size(size, image_size, expected):
    # 197 * 256 / 233 = 216.45 -> 216
    assert ResizePad(size, image_size).resized_size == expected


def test_image_bilinear_and_pad_by_hand():
    gray = np.array([[0.0, 1.0], [2.0, 3.0]], dtype=np.float32)
    out = ResizePad((2, 2), 4).scaled_image(gray[:, :, None], "minmax")
    assert out.shape == (3, 4, 4) and out.dtype == torch.float32
    # half-pixel centres: source x = (dst + 0.5) / 2 - 0.5 = -0.25, 0.25, 0.75, 1.25 (clamped)
    np.testing.assert_allclose(out[0, 0], [0.0, 0.25, 0.75, 1.0])
    np.testing.assert_allclose(out[0, 1], [0.5, 0.75, 1.25, 1.5])
    np.testing.assert_allclose(out[2, 3], [2.0, 2.25, 2.75, 3.0])

    padded = ResizePad((2, 4), 8).scaled_image(np.ones((2, 4, 3), np.float32), "minmax")
    assert padded[:, :4, :].min() == 1.0  # resized to (4, 8): rows 0..3 hold the image
    assert padded[:, 4:, :].abs().max() == 0.0  # rows 4..7 are padding


def test_boxes_and_points_scale_and_invert():
    transform = ResizePad((300, 400), 1024)  # scale 2.56 on both axes
    boxes = np.array([[10.0, 20.0, 30.0, 40.0]])
    np.testing.assert_allclose(transform.boxes(boxes), [[25.6, 51.2, 76.8, 102.4]])
    np.testing.assert_allclose(transform.boxes_to_original(transform.boxes(boxes)), boxes)
    points = torch.tensor([[[100.0, 50.0]]])
    np.testing.assert_allclose(transform.points(points).numpy(), [[[256.0, 128.0]]], rtol=1e-6)
    # non-uniform rounding: (5, 7) -> (7, 10): x scale 10/7, y scale 7/5
    np.testing.assert_allclose(ResizePad((5, 7), 10).points(np.array([7.0, 5.0])), [10.0, 7.0])


def test_nearest_indices_by_hand():
    # 384 -> 256: floor((d + 0.5) * 1.5) = 0, 2, 3, 5, 6, 8 ...
    np.testing.assert_array_equal(nearest_indices(384, 256)[:6], [0, 2, 3, 5, 6, 8])
    # 2 -> 5: floor((d + 0.5) * 0.4) = 0, 0, 1, 1, 1
    np.testing.assert_array_equal(nearest_indices(2, 5), [0, 0, 1, 1, 1])


def _thin_structures(height: int, width: int) -> np.ndarray:
    mask = np.zeros((height, width), dtype=np.uint8)
    mask[height // 3, :] = 1  # one-pixel horizontal line
    mask[:, width // 2] = 2  # one-pixel vertical line
    mask[1, 1] = 255  # single pixel
    mask[height - 1, width - 1] = 254  # corner pixel
    rng = np.random.default_rng(0)
    mask[rng.random((height, width)) < 0.05] = 3  # scattered pixels
    return mask


@pytest.mark.parametrize("size, image_size", [((37, 53), 64), ((384, 384), 1024), ((7, 5), 256),
                                               ((60, 20), 60), ((255, 256), 256)])
def test_mask_round_trip_exact_when_not_downsampling(size, image_size):
    mask = _thin_structures(*size)
    transform = ResizePad(size, image_size)
    assert transform.lossless
    model = transform.mask(mask)
    assert model.shape == (image_size, image_size) and model.dtype == torch.int64
    new_h, new_w = transform.resized_size
    assert model[new_h:, :].abs().sum() == 0 and model[:, new_w:].abs().sum() == 0
    back = transform.mask_to_original(model)
    np.testing.assert_array_equal(back.numpy(), mask.astype(np.int64))
    # numpy in, numpy out
    back_np = transform.mask_to_original(model.numpy())
    assert isinstance(back_np, np.ndarray)
    np.testing.assert_array_equal(back_np, mask)


def test_mask_round_trip_lossy_when_downsampling():
    # 384 -> 256 samples rows 0, 2, 3, 5, ...: a one-pixel line on row 1 vanishes.
    mask = np.zeros((384, 384), dtype=np.uint8)
    mask[1, :] = 1
    mask[10:20, 10:20] = 2
    transform = ResizePad((384, 384), 256)
    assert not transform.lossless
    back = transform.mask_to_original(transform.mask(mask)).numpy()
    assert (back == 1).sum() == 0
    # the 10x10 square is sampled on rows/cols {8,9,11,12,14,15,17,18,20}->{8..20}
    assert (back == 2).sum() > 0


def test_logits_to_original_by_hand():
    # original (2, 4), S = 4: resized (2, 4); logits at s = 2 are upsampled to 4x4 and cropped.
    transform = ResizePad((2, 4), 4)
    logits = torch.tensor([[0.0, 1.0], [2.0, 3.0]])[None, None]
    out = transform.logits_to_original(logits)
    assert out.shape == (1, 1, 2, 4)
    np.testing.assert_allclose(out[0, 0], [[0.0, 0.25, 0.75, 1.0], [0.5, 0.75, 1.25, 1.5]])
    # s == S needs no upsampling: just the crop
    full = torch.arange(16.0).reshape(4, 4)
    np.testing.assert_array_equal(transform.logits_to_original(full).numpy(), full[:2].numpy())


def test_logits_to_original_keeps_a_box_region():
    transform = ResizePad((300, 400), 1024)
    mask = np.zeros((300, 400), dtype=np.uint8)
    mask[100:200, 50:350] = 1
    model = transform.mask(mask).float() * 20 - 10  # logits +10 inside, -10 outside
    low_res = torch.nn.functional.interpolate(model[None, None], size=(256, 256), mode="bilinear")
    back = transform.logits_to_original(low_res)[0, 0] > 0
    assert back.shape == (300, 400)
    agreement = (back.numpy() == mask.astype(bool)).mean()
    assert agreement > 0.995  # only boundary pixels may move, by < 2 px


def test_prepare_image_shapes():
    image = np.arange(12, dtype=np.uint8).reshape(3, 4)
    tensor, transform = prepare_image(image, 8, "minmax")
    assert tensor.shape == (3, 8, 8)
    assert transform.original_size == (3, 4) and transform.resized_size == (6, 8)
    assert tensor.max() == pytest.approx(1.0) and tensor[:, 6:].abs().max() == 0


def test_mask_shape_mismatch_is_user_error():
    with pytest.raises(DataError, match=r"does not match original size \(3, 4\)"):
        ResizePad((3, 4), 8).mask(np.zeros((4, 3)))


def test_value_range_shared_by_slices_of_a_volume():
    volume = np.stack([np.full((2, 2), 10.0), np.array([[0.0, 20.0], [40.0, 10.0]])])
    value_range = intensity_range(volume)
    assert value_range == (0.0, 40.0)
    flat = normalize_intensity(volume[0], "minmax", value_range=value_range)
    np.testing.assert_allclose(flat[:, :, 0], np.full((2, 2), 0.25))  # not zeros
    # the window is folded into the range: level 0 width 20 -> clipped to [-10, 10]
    assert intensity_range(volume, window=(0, 20)) == (0.0, 10.0)
    assert intensity_range(np.array([3, 7], np.uint8), keep_uint8=True) == (0.0, 255.0)
    out = normalize_intensity(np.array([[0, 255]], np.uint8), "imagenet", value_range=(0, 255))
    np.testing.assert_allclose(out[0, 1], (255 - MEAN) / STD, rtol=1e-6)
    with pytest.raises(DataError, match="give one of a CT window, MR percentiles or a value_range"):
        normalize_intensity(volume[0], "minmax", window=(0, 1), value_range=(0, 1))


@pytest.mark.parametrize("normalization", ["imagenet", "minmax"])
@pytest.mark.parametrize("channels", [None, 3, 4])
def test_fast_path_matches_normalise_then_resize(normalization, channels):
    rng = np.random.default_rng(0)
    shape = (37, 53) if channels is None else (37, 53, channels)
    image = rng.integers(0, 4000, size=shape).astype(np.uint16)
    tensor, transform = prepare_image(image, 64, normalization)
    # reference: normalise at the original size, then resize bilinearly and pad bottom/right
    normalised = torch.from_numpy(normalize_intensity(image, normalization).transpose(2, 0, 1).copy())[None]
    height, width = transform.resized_size
    resized = F.interpolate(normalised, size=(height, width), mode="bilinear", align_corners=False)[0]
    reference = F.pad(resized, (0, 64 - width, 0, 64 - height))
    torch.testing.assert_close(tensor, reference, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("normalization", ["imagenet", "minmax"])
@pytest.mark.parametrize("channels", [1, 3])
def test_pending_image_builds_the_scaled_image_exactly(normalization, channels):
    """What a DataLoader worker sends (resized, unpadded, 1 or 3 channels) builds, in the
    training process, the very tensor the worker would have built."""
    rng = np.random.default_rng(1)
    scaled = rng.uniform(0, 255, size=(37, 53, channels)).astype(np.float32)
    transform = ResizePad((37, 53), 64)
    pending = transform.pending_image(scaled, normalization)
    assert tuple(pending.resized.shape) == (channels, *transform.resized_size)
    assert pending.shape == (3, 64, 64)
    built = pending.build()
    assert torch.equal(built, transform.scaled_image(scaled, normalization))
    assert torch.equal(built[:, transform.resized_size[0]:], torch.zeros(3, 64 - 45, 64))  # padding stays 0


def test_pending_image_rejects_an_unknown_normalization():
    with pytest.raises(DataError, match="unknown normalization 'zscore'"):
        ResizePad((8, 8), 16).pending_image(np.zeros((8, 8, 1), np.float32), "zscore")
