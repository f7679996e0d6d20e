"""`Predictor.predict_volume` on a tiny automatic run: every slice, batched, streamed, geometry kept."""

from __future__ import annotations

import numpy as np
import pytest

from samtune.data.geometry import Geometry, LoadedImage
from samtune.errors import DataError, UserError
from samtune.inference.predictor import Predictor

GEOMETRY = Geometry((0.8, 0.9, 2.5), (-12.0, 30.0, 4.5), (0.0, 1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0))


def disc_volume(depth=6, size=40, seed=3):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    volume = rng.normal(60, 15, (depth, size, size + 4))
    for z in range(depth):
        volume[z, :, :size] += 120 * ((yy - 20) ** 2 + (xx - 18) ** 2 <= (4 + z) ** 2)
    return np.clip(volume, 0, 255).astype(np.int16)  # int16, as CT/MR volumes are


class Spy:
    """Counts encoder batch sizes and intensity-range computations of a predictor."""

    def __init__(self, predictor, monkeypatch):
        self.batches, self.ranges = [], 0
        encode, value_range = predictor.encode_images, predictor.value_range

        def counting_encode(images, rng=None):
            self.batches.append(len(images))
            return encode(images, rng)

        def counting_range(array):
            self.ranges += 1
            return value_range(array)

        monkeypatch.setattr(predictor, "encode_images", counting_encode)
        monkeypatch.setattr(predictor, "value_range", counting_range)


@pytest.fixture(scope="module")
def predictor(automatic_run):
    return Predictor.from_run(automatic_run)


def test_volume_equals_its_slices_and_keeps_geometry(predictor, monkeypatch):
    volume = disc_volume()
    spy = Spy(predictor, monkeypatch)
    result = predictor.predict_volume(LoadedImage(volume, GEOMETRY, "v.nii.gz"), batch_size=4)
    assert result.array.shape == volume.shape and result.array.dtype == np.uint8
    assert result.geometry == GEOMETRY and result.path == "v.nii.gz"
    assert spy.batches == [4, 2] and spy.ranges == 1  # streamed in batches, one range per volume
    value_range = (float(volume.min()), float(volume.max()))
    one_by_one = np.stack([predictor.predict_image(s, value_range=value_range) for s in volume])
    # batching must not change the result (tolerate a rare tie flipping at float noise)
    assert (one_by_one != result.array).mean() < 1e-3
    assert set(np.unique(result.array)) <= {0, 1}


@pytest.mark.parametrize("axis", [1, 2])
def test_other_axes_restack_to_the_source_shape(predictor, axis):
    volume = disc_volume(depth=3, size=6)
    result = predictor.predict_volume(volume, axis=axis, batch_size=3)
    assert result.array.shape == volume.shape and result.geometry == Geometry.identity(3)
    index = 4
    value_range = (float(volume.min()), float(volume.max()))
    expected = predictor.predict_image(np.take(volume, index, axis=axis), value_range=value_range)
    assert (np.take(result.array, index, axis=axis) != expected).mean() < 1e-3


def test_volume_errors(predictor):
    with pytest.raises(DataError, match="expected a volume array"):
        predictor.predict_volume(np.zeros((8, 8)))
    with pytest.raises(DataError, match="slice axis must be"):
        predictor.predict_volume(np.zeros((3, 8, 8)), axis=3)
    with pytest.raises(UserError, match="batch size must be >= 1"):
        predictor.predict_volume(np.zeros((3, 8, 8)), batch_size=0)
    with pytest.raises(UserError, match="takes no prompts"):
        predictor.predict_image(np.zeros((8, 8)), box=(1, 1, 4, 4))
    prompted = Predictor(predictor.model, "prompted")
    with pytest.raises(UserError, match="segments from prompts"):
        prompted.predict_volume(np.zeros((3, 8, 8)))
