"""3D prompted propagation, zero-shot LiteMedSAM (real weights), on the MNI152 T1 template.

One tight box around the white matter (probability map >= 128 of 255) on the middle axial
slice (z = 94 of 189); no other ground truth is used. To keep the test short the volume is
an 11-slice slab, every 3rd axial slice from z = 79 to 109 (3 mm apart), and propagation
has to reach both ends of it (5 slices = 15 mm each way).

Threshold: on this slab the propagated masks score a 3D Dice of 0.339 against the white
matter (measured, torch 2.13 CPU), per slice 0.14 (z = 79, the slab's end) to 0.56; the
same model prompted with the tight ground-truth box on every slice averages 0.40 here,
so propagation loses little to ground-truth boxes. Zero-shot LiteMedSAM undersegments
white matter (about half of its area), hence the low absolute figures. The test asks for
0.25 in 3D and 0.10 on every slice: clearly below the measurement, yet a box that drifts
off the white matter, or a wrong slice order or axis, falls far below both.
"""

from __future__ import annotations

import numpy as np
import pytest

from samtune.assets import mni_template
from samtune.data.geometry import Geometry, LoadedImage
from samtune.data.readers import read_image
from samtune.inference.predictor import Predictor
from samtune.data.prompts import mask_box

pytestmark = pytest.mark.slow

START, STEP, HALF = 94, 3, 5  # slab: z = 79, 82, ..., 109
MIN_DICE_3D, MIN_DICE_SLICE = 0.25, 0.10


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2.0 * float((a & b).sum()) / float(a.sum() + b.sum())


def slab(image, index: np.ndarray) -> LoadedImage:
    """Every STEP-th axial slice, with the geometry that this subsampling implies."""
    g = image.geometry
    direction = np.asarray(g.direction).reshape(3, 3)
    origin = np.asarray(g.origin) + direction @ (np.asarray(g.spacing) * np.array([0, 0, index[0]]))
    spacing = (g.spacing[0], g.spacing[1], g.spacing[2] * STEP)
    return LoadedImage(np.ascontiguousarray(image.array[index]), Geometry(spacing, tuple(origin), g.direction))


def test_white_matter_is_propagated_from_one_box():
    index = np.arange(START - HALF * STEP, START + HALF * STEP + 1, STEP)
    volume = slab(read_image(mni_template("t1")), index)
    white = read_image(mni_template("wm")).array[index] >= 128
    predictor = Predictor.from_model("lite_medsam")

    result = predictor.propagate(volume, HALF, box=mask_box(white[HALF]))

    assert (result.start, result.first, result.last) == (HALF, 0, len(index) - 1)
    labels = result.labels.array.astype(bool)
    assert result.labels.geometry == volume.geometry and labels.shape == white.shape
    per_slice = [dice(labels[i], white[i]) for i in range(len(index))]
    assert min(per_slice) > MIN_DICE_SLICE, per_slice
    assert dice(labels, white) > MIN_DICE_3D
