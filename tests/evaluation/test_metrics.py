"""Metrics: hand-computed values, empty-mask rules and parity with MONAI on random masks."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from monai.metrics import compute_dice, compute_hausdorff_distance, compute_iou, compute_surface_dice
from scipy.ndimage import gaussian_filter

from samtune.evaluation.metrics import binary_metrics, case_metrics, normalize_spacing


# ---------------------------------------------------------------- hand-computed values


def test_overlapping_squares_dice_and_iou():
    # Two 4x4 squares, the second shifted by 2 columns: overlap 4x2 = 8 of 16 pixels each.
    gt = np.zeros((10, 10), dtype=bool)
    pred = np.zeros((10, 10), dtype=bool)
    gt[2:6, 1:5] = True
    pred[2:6, 3:7] = True
    m = binary_metrics(pred, gt)
    assert m.dice == pytest.approx(2 * 8 / 32)  # 0.5
    assert m.iou == pytest.approx(8 / 24)  # |union| = 16 + 16 - 8
    assert (m.gt_voxels, m.pred_voxels) == (16, 16)


def test_hd95_interpolates_between_directed_distances_with_anisotropic_spacing():
    # GT: a 1-pixel line (every pixel is boundary) on row 5, columns 0..9.
    # Pred: the same line plus one stray pixel 4 rows below at column 0.
    # Spacing (3.0, 0.7) mm: the stray pixel lies 4 * 3.0 = 12 mm from the GT line.
    # Directed pred->GT distances: ten 0s and one 12; 95th percentile with linear
    # interpolation sits at rank 0.95 * (11 - 1) = 9.5, between 0 and 12 -> 6.0.
    # GT->pred: all 0. HD95 = max(6, 0) = 6 mm.
    gt = np.zeros((12, 12), dtype=bool)
    gt[5, 0:10] = True
    pred = gt.copy()
    pred[9, 0] = True
    m = binary_metrics(pred, gt, spacing=(3.0, 0.7), nsd_tolerance=5.0)
    assert m.hd95 == pytest.approx(6.0)
    # NSD at 5 mm: 10 of 11 pred boundary pixels and 10 of 10 GT pixels -> 20 / 21.
    assert m.nsd == pytest.approx(20 / 21)
    assert binary_metrics(pred, gt, spacing=(3.0, 0.7), nsd_tolerance=12.0).nsd == 1.0
    # With the spacing swapped, the stray pixel is 4 * 0.7 = 2.8 mm away: HD95 = 1.4.
    assert binary_metrics(pred, gt, spacing=(0.7, 3.0)).hd95 == pytest.approx(1.4, rel=1e-6)


def test_disjoint_squares_surface_metrics_in_mm():
    # 3x3 squares 10 rows apart, row spacing 0.5 mm, column spacing 3 mm. Boundary: the
    # 8 pixels around each centre. The nearest boundary pixel on the other square is
    # straight along the rows: GT row 2 <-> pred row 10 is 8 rows = 4.0 mm; 3 pixels of
    # each top/bottom row at 4.0 and 5.0 mm, 2 middle-row pixels at 4.5 mm.
    # Distances per direction: [4, 4, 4, 4.5, 4.5, 5, 5, 5]; P95 at rank 6.65 -> 5.0.
    gt = np.zeros((20, 8), dtype=bool)
    pred = np.zeros((20, 8), dtype=bool)
    gt[0:3, 2:5] = True
    pred[10:13, 2:5] = True
    m = binary_metrics(pred, gt, spacing=(0.5, 3.0), nsd_tolerance=4.5)
    assert (m.dice, m.iou) == (0.0, 0.0)
    assert m.hd95 == pytest.approx(5.0)
    assert m.nsd == pytest.approx(10 / 16)  # 5 of 8 within 4.5 mm, both directions
    assert binary_metrics(pred, gt, spacing=(0.5, 3.0), nsd_tolerance=3.9).nsd == 0.0


def test_single_voxels_in_3d_with_anisotropic_spacing():
    gt = np.zeros((5, 5, 5), dtype=bool)
    pred = np.zeros((5, 5, 5), dtype=bool)
    gt[1, 1, 1] = True
    pred[3, 2, 1] = True
    m = binary_metrics(pred, gt, spacing=(2.5, 1.0, 0.5), nsd_tolerance=5.0)
    # sqrt((2 * 2.5)^2 + (1 * 1.0)^2 + 0) = sqrt(26) = 5.099 mm
    assert m.hd95 == pytest.approx(math.sqrt(26), rel=1e-6)
    assert m.nsd == 0.0
    assert binary_metrics(pred, gt, spacing=(2.5, 1.0, 0.5), nsd_tolerance=5.1).nsd == 1.0


def test_identical_masks_are_perfect():
    mask = np.zeros((6, 7, 8), dtype=bool)
    mask[1:5, 2:6, 3:7] = True
    m = binary_metrics(mask, mask, spacing=(3.0, 1.0, 1.0))
    assert (m.dice, m.iou, m.hd95, m.nsd) == (1.0, 1.0, 0.0, 1.0)


# ---------------------------------------------------------------- empty masks


def test_both_empty_is_perfect_by_default_and_nan_on_request():
    empty = np.zeros((8, 8), dtype=bool)
    m = binary_metrics(empty, empty)
    assert (m.dice, m.iou, m.hd95, m.nsd) == (1.0, 1.0, 0.0, 1.0)
    m = binary_metrics(empty, empty, both_empty="nan")
    assert all(math.isnan(v) for v in (m.dice, m.iou, m.hd95, m.nsd))


@pytest.mark.parametrize("empty_side", ["pred", "gt"])
def test_one_empty_scores_zero_and_infinite_distance(empty_side):
    full = np.zeros((4, 8, 8), dtype=bool)
    full[1:3, 2:5, 2:5] = True
    empty = np.zeros_like(full)
    pred, gt = (empty, full) if empty_side == "pred" else (full, empty)
    for rule in ("perfect", "nan"):  # the both-empty rule does not change this case
        m = binary_metrics(pred, gt, spacing=(2.0, 1.0, 1.0), both_empty=rule)
        assert (m.dice, m.iou, m.nsd) == (0.0, 0.0, 0.0)
        assert m.hd95 == math.inf
    # MONAI: every boundary distance is inf, so its plain Hausdorff distance is inf (its
    # HD95 is NaN, from interpolating between infinities) and its NSD is 0.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        p = torch.from_numpy(pred)[None, None].float()
        g = torch.from_numpy(gt)[None, None].float()
        assert compute_hausdorff_distance(p, g, include_background=True).item() == math.inf
        assert compute_surface_dice(p, g, [2.0], include_background=True).item() == 0.0


# ---------------------------------------------------------------- inputs


def test_case_metrics_scores_present_labels_and_requested_absent_ones():
    gt = np.zeros((10, 10), dtype=np.uint8)
    pred = np.zeros((10, 10), dtype=np.uint8)
    gt[1:4, 1:4] = 1
    pred[1:4, 1:4] = 1
    pred[6:8, 6:8] = 3  # a false-positive class
    auto = case_metrics(pred, gt)
    assert list(auto) == [1, 3]
    assert auto[1].dice == 1.0 and auto[3].dice == 0.0 and auto[3].hd95 == math.inf
    chosen = case_metrics(pred, gt, classes=[2, 1], nsd_tolerance={1: 1.0, 2: 1.0})
    assert list(chosen) == [2, 1]
    assert chosen[2].dice == 1.0  # both empty
    with pytest.raises(ValueError, match="class 1"):
        case_metrics(pred, gt, classes=[1], nsd_tolerance={2: 1.0})


def test_bad_inputs_are_rejected():
    a = np.zeros((4, 4), dtype=bool)
    with pytest.raises(ValueError, match="shape"):
        binary_metrics(a, np.zeros((4, 5), dtype=bool))
    with pytest.raises(ValueError, match="2D or 3D"):
        binary_metrics(np.zeros(4, dtype=bool), np.zeros(4, dtype=bool))
    with pytest.raises(ValueError, match="3 values for a 2D"):
        binary_metrics(a, a, spacing=(1, 1, 1))
    with pytest.raises(ValueError, match="positive"):
        normalize_spacing((1.0, 0.0), 2)
    with pytest.raises(ValueError, match="tolerance"):
        binary_metrics(a, a, nsd_tolerance=-1)
    assert normalize_spacing(None, 3) == (1.0, 1.0, 1.0)
    assert normalize_spacing(0.5, 2) == (0.5, 0.5)


# ---------------------------------------------------------------- parity with MONAI


def _random_labels(rng: np.random.Generator, shape: tuple[int, ...], n_classes: int) -> np.ndarray:
    """Smooth random blobs: each class where its smoothed noise is highest and high enough."""
    fields = np.stack([gaussian_filter(rng.standard_normal(shape), sigma=2.0) for _ in range(n_classes)])
    labels = fields.argmax(0) + 1
    labels[fields.max(0) < 0.1] = 0
    return labels


def _one_hot(labels: np.ndarray, n_classes: int) -> torch.Tensor:
    return torch.stack([torch.from_numpy(labels == c) for c in range(n_classes + 1)])[None].float()


@pytest.mark.filterwarnings("ignore::FutureWarning")  # MONAI's own deprecated argument
@pytest.mark.parametrize(
    "shape, spacing",
    [((48, 64), (0.7, 1.9)), ((18, 30, 26), (3.0, 0.8, 1.1))],
    ids=["2d", "3d"],
)
def test_parity_with_monai_on_random_masks(shape, spacing):
    rng = np.random.default_rng(len(shape))
    n_classes, tolerance = 3, 1.5
    for _ in range(3):
        gt = _random_labels(rng, shape, n_classes)
        pred = _random_labels(rng, shape, n_classes)
        ours = case_metrics(pred, gt, spacing=spacing, classes=[1, 2, 3], nsd_tolerance=tolerance)
        p, g = _one_hot(pred, n_classes), _one_hot(gt, n_classes)
        # Spacing per batch item (a flat list of length == batch would be read per item).
        batch_spacing = [list(spacing)]
        dice = compute_dice(p, g, include_background=False)[0]
        iou = compute_iou(p, g, include_background=False)[0]
        hd95 = compute_hausdorff_distance(p, g, percentile=95, spacing=batch_spacing)[0]
        nsd = compute_surface_dice(p, g, [tolerance] * n_classes, spacing=batch_spacing)[0]
        for i, c in enumerate([1, 2, 3]):
            assert ours[c].gt_voxels > 0 and ours[c].pred_voxels > 0
            assert ours[c].dice == pytest.approx(dice[i].item(), abs=1e-6)
            assert ours[c].iou == pytest.approx(iou[i].item(), abs=1e-6)
            assert ours[c].hd95 == pytest.approx(hd95[i].item(), rel=1e-5)
            assert ours[c].nsd == pytest.approx(nsd[i].item(), abs=1e-6)
            assert 0.0 < ours[c].nsd < 1.0 and ours[c].hd95 > 0  # a non-trivial comparison
