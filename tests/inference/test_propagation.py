"""Propagation logic on a synthetic volume, with a stand-in predictor that segments
exactly the bright pixels inside the box it is given (so every box is observable)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from samtune.data.geometry import Geometry, LoadedImage
from samtune.errors import UserError
from samtune.data.prompts import mask_box
from samtune.inference.propagation import propagate


class IdentityFrame:
    """The model frame is the image frame (what `propagate` asks of a `ResizePad`)."""

    def mask(self, mask):
        return torch.as_tensor(np.asarray(mask, dtype=np.int64))


class BoxThresholdPredictor:
    """Implements what `propagate` uses of `Predictor`: logits +1 on pixels > 0.5 inside the
    box (inclusive pixel indices), -1 elsewhere. Records boxes and encoded batch sizes."""

    mode = "prompted"
    channels = None
    device = "cpu"  # batch size defaults to 1 here

    def __init__(self):
        self.boxes, self.batches, self.ranges, self.mask_inputs = [], [], 0, []

    def value_range(self, array):
        self.ranges += 1
        return float(array.min()), float(array.max())

    def encode_images(self, images, value_range):
        self.batches.append(len(images))
        stacked = torch.stack([torch.as_tensor(np.asarray(i, dtype=np.float32)) for i in images])[:, None]
        return stacked, [IdentityFrame()] * len(images)  # "embedding" [B, 1, H, W]: the image itself

    def prompt_decode(self, embedding, frame, box=None, pts=None, labels=None, mask_input=None):
        self.mask_inputs.append(mask_input)
        logits = self.prompt_logits(embedding, frame, box, pts, labels)
        return logits, logits[None, None], 0.9

    def prompt_logits(self, embedding, frame, box=None, pts=None, labels=None):
        image = embedding[0, 0]
        inside = torch.zeros_like(image, dtype=torch.bool)
        if box is not None:
            x0, y0, x1, y1 = (int(round(v)) for v in box)
            inside[y0 : y1 + 1, x0 : x1 + 1] = True
        if box is not None:
            self.boxes.append(tuple(box))
        return torch.where(inside & (image > 0.5), 1.0, -1.0)


def cone(depth=21, size=48, centre=10):
    """Discs whose radius shrinks by 1 px per slice away from `centre` (radius 8 there), and
    a second object far away that touches no disc's box."""
    yy, xx = np.mgrid[:size, :size]
    volume = np.zeros((depth, size, size), dtype=np.float32)
    for z in range(depth):
        radius = 8 - abs(z - centre)
        if radius >= 0:
            volume[z] = (yy - 20) ** 2 + (xx - 20) ** 2 <= radius**2
    volume[:, 42:46, 42:46] = 1.0  # distractor in every slice
    return volume


def test_the_next_slice_box_adds_the_margin_and_clips_to_the_slice():
    mask = np.zeros((10, 12), dtype=bool)
    mask[2:5, 3:11] = True
    assert mask_box(mask, 2) == (1.0, 0.0, 11.0, 6.0)
    assert mask_box(mask, 0) == (3.0, 2.0, 10.0, 4.0)
    with pytest.raises(ValueError, match="empty mask"):
        mask_box(np.zeros((4, 4), bool))


def test_propagates_both_ways_until_the_object_disappears():
    volume = cone()
    geometry = Geometry((0.7, 0.7, 2.5), (1.0, -2.0, 3.0), tuple(np.eye(3).ravel()))
    predictor = BoxThresholdPredictor()
    result = propagate(predictor, LoadedImage(volume, geometry), 10, box=(10, 10, 30, 30), margin=2, min_area=1)
    disc = volume.copy()
    disc[:, 42:46, 42:46] = 0
    # radius 0 is a single pixel (area 1): slices 2..18 hold the disc
    assert (result.first, result.last, result.start) == (2, 18, 10)
    np.testing.assert_array_equal(result.labels.array, disc.astype(np.uint8))
    assert result.labels.geometry == geometry
    assert result.areas[10] == int(disc[10].sum()) and set(result.areas) == set(range(2, 19))
    assert predictor.ranges == 1  # one intensity range for the whole volume
    # Slice 11 is prompted with slice 10's mask bounding box (12..28) pushed out by 2 px.
    assert predictor.boxes[1] == (10.0, 10.0, 30.0, 30.0)
    assert predictor.boxes[2] == (11.0, 11.0, 29.0, 29.0)


def test_min_area_max_slices_and_look_ahead_batches():
    volume = cone()
    one = propagate(BoxThresholdPredictor(), volume, 10, box=(10, 10, 30, 30), min_area=30)
    # radius-3 discs have 29 pixels, radius-4 discs 49: slices 6..14 (radius >= 4) are kept
    assert (one.first, one.last) == (6, 14)
    assert not one.labels.array[5].any() and not one.labels.array[15].any()

    limited = propagate(BoxThresholdPredictor(), volume, 10, box=(10, 10, 30, 30), min_area=1, max_slices=3)
    assert (limited.first, limited.last) == (7, 13)

    batched_predictor = BoxThresholdPredictor()
    batched = propagate(batched_predictor, volume, 10, box=(10, 10, 30, 30), min_area=1, batch_size=4)
    single_predictor = BoxThresholdPredictor()
    single = propagate(single_predictor, volume, 10, box=(10, 10, 30, 30), min_area=1)
    np.testing.assert_array_equal(batched.labels.array, single.labels.array)
    assert max(batched_predictor.batches) == 4
    assert max(single_predictor.batches) == 1  # the CPU default: batches do not pay there

    gpu_predictor = BoxThresholdPredictor()
    gpu_predictor.device = "cuda"  # only the default batch size looks at it
    gpu = propagate(gpu_predictor, volume, 10, box=(10, 10, 30, 30), min_area=1)
    np.testing.assert_array_equal(gpu.labels.array, single.labels.array)
    assert max(gpu_predictor.batches) == 8


def test_start_slice_is_kept_but_not_propagated_when_too_small():
    volume = cone()
    result = propagate(BoxThresholdPredictor(), volume, 2, box=(15, 15, 25, 25), min_area=5)
    assert (result.first, result.last) == (2, 2) and result.labels.array.sum() == 1


def test_bad_prompts_and_modes_are_user_errors():
    volume = cone()
    with pytest.raises(UserError, match="slice 21 is outside the volume"):
        propagate(BoxThresholdPredictor(), volume, 21, box=(1, 1, 5, 5))
    with pytest.raises(UserError, match="not inside the 48x48 image"):
        propagate(BoxThresholdPredictor(), volume, 3, box=(1, 1, 50, 5))
    with pytest.raises(UserError, match="give a prompt"):
        propagate(BoxThresholdPredictor(), volume, 3)
    automatic = BoxThresholdPredictor()
    automatic.mode = "automatic"
    with pytest.raises(UserError, match="needs a prompted model"):
        propagate(automatic, volume, 3, box=(1, 1, 5, 5))


def test_stop_rule_ends_a_sweep_at_the_first_broken_bound_and_drops_that_slice():
    from samtune.inference.stopping import StopRule

    volume = cone()
    # The predicted IoU of the stand-in is 0.9 everywhere: a bound above it stops at once.
    result = propagate(BoxThresholdPredictor(), volume, 10, box=(10, 10, 30, 30),
                       stop=StopRule(min_area=1, min_iou=0.95))
    assert (result.first, result.last) == (10, 10)
    assert {s.reason for s in result.stops} == {"iou=0.9"}
    # Discs shrink by 1 px radius per slice: area ratio to the previous slice falls below 0.6
    # (growth < 0.6 is not a growth bound) but in-plane overlap drops under 0.5 once the
    # radius is 2 or less (r=2: 13 px inside r=3: 29 px, IoU 0.45).
    shrinking = propagate(BoxThresholdPredictor(), volume, 10, box=(10, 10, 30, 30),
                          stop=StopRule(min_area=1, min_overlap=0.5))
    assert (shrinking.first, shrinking.last) == (5, 15)
    assert shrinking.signals[1][4].overlap == pytest.approx(13 / 29)
    assert shrinking.signals[1][5].overlap == pytest.approx(29 / 49)
    assert {s.reason for s in shrinking.stops} == {"overlap=0.448"}
    assert not shrinking.labels.array[4].any() and shrinking.labels.array[5].sum() == 29


def test_several_prompts_of_one_class_split_the_volume_at_the_midpoint():
    from samtune.inference.propagation import SlicePrompt

    volume = cone()
    predictor = BoxThresholdPredictor()
    result = propagate(predictor, volume, prompts=[SlicePrompt(6, (10, 10, 30, 30)), SlicePrompt(14, (10, 10, 30, 30))],
                       min_area=1)
    # slice 6 owns 7..10, slice 14 owns 11..13: each sweep ends at the midpoint (reason "next prompt")
    ends = {(s.start, s.direction): (s.last, s.reason) for s in result.stops}
    assert ends[6, +1] == (10, "next prompt") and ends[14, -1] == (11, "next prompt")
    assert ends[6, -1] == (2, "area=0") and ends[14, +1] == (18, "area=0")
    disc = volume.copy()
    disc[:, 42:46, 42:46] = 0
    np.testing.assert_array_equal(result.labels.array, disc.astype(np.uint8))


def test_classes_are_propagated_separately_and_the_higher_logit_wins():
    from samtune.inference.propagation import SlicePrompt

    volume = cone()
    result = propagate(BoxThresholdPredictor(), volume, min_area=1,
                       prompts=[SlicePrompt(10, (10, 10, 30, 30), label=1), SlicePrompt(10, (40, 40, 47, 47), label=3)])
    assert result.extents == {1: (2, 18), 3: (0, 20)}  # the distractor fills every slice
    assert set(np.unique(result.labels.array)) == {0, 1, 3}
    assert (result.labels.array[:, 42:46, 42:46] == 3).all()
    assert result.labels.array[10, 20, 20] == 1


def test_mask_prompt_passes_the_previous_low_resolution_logits_and_components_are_cleaned():
    volume = cone()
    volume[:, 20, 30:32] = 1.0  # a 2-pixel island on every slice, a pixel apart from the r=8 disc (to column 28)
    with_mask = BoxThresholdPredictor()
    propagate(with_mask, volume, 10, box=(10, 10, 30, 30), min_area=1, mask_prompt=True, max_slices=1)
    assert with_mask.mask_inputs[0] is None and with_mask.mask_inputs[1] is not None
    without = BoxThresholdPredictor()
    propagate(without, volume, 10, box=(10, 10, 30, 30), min_area=1, max_slices=1)
    assert all(m is None for m in without.mask_inputs)
    kept = propagate(BoxThresholdPredictor(), volume, 10, box=(10, 10, 32, 30), min_area=1, max_slices=0)
    cleaned = propagate(BoxThresholdPredictor(), volume, 10, box=(10, 10, 32, 30), min_area=1, max_slices=0,
                        largest_component=True)
    assert kept.labels.array[10, 20, 30:32].all() and not cleaned.labels.array[10, 20, 30:32].any()
    assert cleaned.areas[10] == kept.areas[10] - 2
