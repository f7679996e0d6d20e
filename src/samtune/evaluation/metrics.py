"""Segmentation metrics for one binary mask pair and for one labelled case.

Arrays are 2D images ``[H, W]`` or 3D volumes in array-axis order (e.g. ``[Z, Y, X]``
for a volume read with SimpleITK); ``spacing`` is given in the same axis order, in mm
(or in pixels when the file carries no spacing, as with PNG). Prediction and ground
truth must share one pixel grid: geometry is checked by the caller.

Metrics (per class, one binary mask pair ``P`` = prediction, ``G`` = ground truth):

- ``dice`` = 2|P∩G| / (|P| + |G|) and ``iou`` = |P∩G| / |P∪G|, counted in voxels
  (identical to ``monai.metrics.compute_dice`` / ``compute_iou``).
- Boundaries: the boundary ∂P of a mask is the set of its foreground voxels that have
  at least one face-connected background neighbour (the image border counts as
  background), i.e. ``P XOR erosion(P)``. Distances are Euclidean distances between
  voxel centres in physical units (``spacing``), from each boundary voxel of one mask to
  the nearest boundary voxel of the other. This is MONAI's
  ``get_edge_surface_distance`` with ``use_subvoxels=False``; we call it once per class
  and derive both surface metrics from the same distances.
- ``hd95``: max(P95(d(∂P→∂G)), P95(d(∂G→∂P))), the larger of the two *directed* 95th
  percentiles (linear interpolation), as ``monai.metrics.compute_hausdorff_distance``
  with ``percentile=95`` computes it (MedPy's ``hd95`` instead takes one percentile of
  the pooled distances; the values differ slightly).
- ``nsd``, normalised surface Dice at tolerance τ (mm) (Nikolov et al. 2021,
  arXiv:2111.05408; MONAI's ``compute_surface_dice``, ``use_subvoxels=False``):
  (#{p ∈ ∂P : d(p, ∂G) ≤ τ} + #{g ∈ ∂G : d(g, ∂P) ≤ τ}) / (|∂P| + |∂G|),
  i.e. the fraction of boundary voxels of both masks lying within τ of the other
  mask's boundary. Boundary elements are counted as voxels, not weighted by surfel
  area as in DeepMind's ``surface-distance`` package.

Empty masks. MONAI returns NaN for every metric when both masks are empty, and when
one is empty Dice 0, NSD 0, Hausdorff distance inf but HD95 NaN (its percentile
interpolates between infinite distances). We fix the values below so that every case has
a row and nothing leaves a summary without being counted:

====================  ======  =====  =====  ====
case                  dice    iou    hd95   nsd
====================  ======  =====  =====  ====
both empty            1       1      0      1
one empty, not other  0       0      inf    0
====================  ======  =====  =====  ====

- Both empty: the prediction is exactly right (no structure where there is none), so
  the overlap metrics are perfect and there is no boundary error. Pass
  ``both_empty="nan"`` for the nnU-Net / MONAI default instead: all four are NaN and the
  case is left out of that class's statistics (and counted as such).
- Exactly one empty: no overlap, no boundary point is within any tolerance, and no
  finite distance exists from a boundary to an empty set, so HD95 is ``inf`` (as
  MONAI's plain Hausdorff distance). NaN would be wrong here: NaN means "undefined, skip
  it", and skipping a missed or hallucinated structure would flatter a model. Summaries
  report how many values were infinite (see ``samtune.evaluation.accumulator``).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from monai.metrics.utils import get_edge_surface_distance

METRIC_NAMES: tuple[str, ...] = ("dice", "iou", "hd95", "nsd")
BothEmpty = Literal["perfect", "nan"]
BOTH_EMPTY_RULES: tuple[str, ...] = ("perfect", "nan")
# What `samtune eval` and training's validation use unless told otherwise.
DEFAULT_BOTH_EMPTY: BothEmpty = "perfect"
# The MedSAM evaluation's default NSD tolerance, in mm.
DEFAULT_NSD_TOLERANCE_MM = 2.0


@dataclass(frozen=True)
class ClassMetrics:
    """Metrics of one class in one case; distances in the units of ``spacing`` (mm)."""

    dice: float
    iou: float
    hd95: float
    nsd: float
    gt_voxels: int
    pred_voxels: int

    def as_dict(self) -> dict[str, float | int]:
        return {
            "dice": self.dice,
            "iou": self.iou,
            "hd95": self.hd95,
            "nsd": self.nsd,
            "gt_voxels": self.gt_voxels,
            "pred_voxels": self.pred_voxels,
        }


def normalize_spacing(spacing: float | Sequence[float] | None, ndim: int) -> tuple[float, ...]:
    """Spacing per array axis: None -> all 1; a number -> isotropic; else one per axis."""
    if spacing is None:
        values = (1.0,) * ndim
    elif isinstance(spacing, (int, float, np.floating, np.integer)):
        values = (float(spacing),) * ndim
    else:
        values = tuple(float(s) for s in spacing)
    if len(values) != ndim:
        raise ValueError(f"spacing {tuple(values)} has {len(values)} values for a {ndim}D array")
    if not all(math.isfinite(s) and s > 0 for s in values):
        raise ValueError(f"spacing must be positive and finite, got {values}")
    return values


def overlap_metrics(pred: np.ndarray, gt: np.ndarray) -> tuple[float, float]:
    """(dice, iou) of two boolean masks of one shape; both empty gives (nan, nan)."""
    intersection = int(np.count_nonzero(pred & gt))
    n_pred, n_gt = int(np.count_nonzero(pred)), int(np.count_nonzero(gt))
    union = n_pred + n_gt - intersection
    if union == 0:
        return math.nan, math.nan
    return 2.0 * intersection / (n_pred + n_gt), intersection / union


def surface_metrics(
    pred: np.ndarray, gt: np.ndarray, spacing: Sequence[float], tolerance: float
) -> tuple[float, float]:
    """(hd95, nsd) of two non-empty boolean masks; see the module docstring."""
    with warnings.catch_warnings():
        # MONAI warns about empty masks (callers handle those before we get here) and,
        # from inside this very function, about its own deprecated argument.
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("ignore", FutureWarning)
        _, distances, _ = get_edge_surface_distance(
            torch.from_numpy(np.ascontiguousarray(pred)),
            torch.from_numpy(np.ascontiguousarray(gt)),
            distance_metric="euclidean",
            spacing=list(spacing),
            use_subvoxels=False,
            symmetric=True,
        )
    pred_to_gt, gt_to_pred = (d.double().numpy() for d in distances)
    # np.percentile's default "linear" method equals torch.quantile's, which MONAI uses;
    # numpy also has no size limit on its input.
    hd95 = max(float(np.percentile(pred_to_gt, 95)), float(np.percentile(gt_to_pred, 95)))
    within = np.count_nonzero(pred_to_gt <= tolerance) + np.count_nonzero(gt_to_pred <= tolerance)
    nsd = within / (pred_to_gt.size + gt_to_pred.size)
    return hd95, float(nsd)


def binary_metrics(
    pred: np.ndarray,
    gt: np.ndarray,
    spacing: float | Sequence[float] | None = None,
    nsd_tolerance: float = DEFAULT_NSD_TOLERANCE_MM,
    both_empty: BothEmpty = "perfect",
) -> ClassMetrics:
    """All metrics for one pair of binary masks (2D or 3D, same shape).

    ``spacing`` is per array axis (default 1 = pixel units); ``nsd_tolerance`` is in the
    same units. Empty masks follow the rules in the module docstring.
    """
    pred, gt = np.asarray(pred).astype(bool, copy=False), np.asarray(gt).astype(bool, copy=False)
    if pred.shape != gt.shape:
        raise ValueError(f"prediction shape {pred.shape} differs from ground truth {gt.shape}")
    if pred.ndim not in (2, 3):
        raise ValueError(f"expected a 2D or 3D mask, got shape {pred.shape}")
    if not (math.isfinite(nsd_tolerance) and nsd_tolerance >= 0):
        raise ValueError(f"NSD tolerance must be finite and >= 0, got {nsd_tolerance}")
    if both_empty not in BOTH_EMPTY_RULES:
        raise ValueError(f"both_empty must be one of {BOTH_EMPTY_RULES}, got {both_empty!r}")
    spacing = normalize_spacing(spacing, pred.ndim)
    n_pred, n_gt = int(np.count_nonzero(pred)), int(np.count_nonzero(gt))
    empty = empty_mask_metrics(n_pred, n_gt, both_empty)
    if empty is not None:
        return empty
    dice, iou = overlap_metrics(pred, gt)
    hd95, nsd = surface_metrics(pred, gt, spacing, nsd_tolerance)
    return ClassMetrics(dice, iou, hd95, nsd, n_gt, n_pred)


def empty_mask_metrics(n_pred: int, n_gt: int, both_empty: BothEmpty = "perfect") -> ClassMetrics | None:
    """The fixed metrics when either mask is empty (module docstring's table), else None."""
    if n_pred == 0 and n_gt == 0:
        if both_empty == "nan":
            return ClassMetrics(math.nan, math.nan, math.nan, math.nan, 0, 0)
        return ClassMetrics(1.0, 1.0, 0.0, 1.0, 0, 0)
    if n_pred == 0 or n_gt == 0:
        return ClassMetrics(0.0, 0.0, math.inf, 0.0, n_gt, n_pred)
    return None


def class_dice(
    pred_labels: np.ndarray, gt_labels: np.ndarray, classes: Sequence[int], both_empty: BothEmpty = "perfect"
) -> dict[int, float]:
    """Dice per class of two label maps, by the same rules as `case_metrics` (empty masks
    included) without the surface metrics: what validation during training needs."""
    pred_labels, gt_labels = np.asarray(pred_labels), np.asarray(gt_labels)
    if pred_labels.shape != gt_labels.shape:
        raise ValueError(f"prediction shape {pred_labels.shape} differs from ground truth {gt_labels.shape}")
    scores = {}
    for c in classes:
        pred, gt = pred_labels == c, gt_labels == c
        empty = empty_mask_metrics(int(np.count_nonzero(pred)), int(np.count_nonzero(gt)), both_empty)
        scores[int(c)] = empty.dice if empty is not None else overlap_metrics(pred, gt)[0]
    return scores


def present_labels(*label_arrays: np.ndarray) -> list[int]:
    """Sorted non-zero label values found in any of the arrays."""
    found: set[int] = set()
    for labels in label_arrays:
        found.update(int(v) for v in np.unique(labels))
    found.discard(0)
    return sorted(found)


def tolerance_for(nsd_tolerance: float | Mapping[int, float], label: int) -> float:
    """The NSD tolerance of one class: a single number for all, or one per class."""
    if isinstance(nsd_tolerance, Mapping):
        if label not in nsd_tolerance:
            raise ValueError(f"no NSD tolerance given for class {label}")
        return float(nsd_tolerance[label])
    return float(nsd_tolerance)


def case_metrics(
    pred_labels: np.ndarray,
    gt_labels: np.ndarray,
    spacing: float | Sequence[float] | None = None,
    classes: Sequence[int] | None = None,
    nsd_tolerance: float | Mapping[int, float] = DEFAULT_NSD_TOLERANCE_MM,
    both_empty: BothEmpty = "perfect",
) -> dict[int, ClassMetrics]:
    """Metrics per class of one case from two label maps (integer class per voxel).

    ``classes`` are the label values to score, one binary problem each (``label ==
    value``); by default every non-zero value present in either map. Returns
    ``{class: ClassMetrics}`` in the order of ``classes``.
    """
    pred_labels, gt_labels = np.asarray(pred_labels), np.asarray(gt_labels)
    if pred_labels.shape != gt_labels.shape:
        raise ValueError(
            f"prediction shape {pred_labels.shape} differs from ground truth {gt_labels.shape}"
        )
    if classes is None:
        classes = present_labels(pred_labels, gt_labels)
    return {
        int(c): binary_metrics(
            pred_labels == c,
            gt_labels == c,
            spacing=spacing,
            nsd_tolerance=tolerance_for(nsd_tolerance, int(c)),
            both_empty=both_empty,
        )
        for c in classes
    }
