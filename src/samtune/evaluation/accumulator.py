"""Collect metrics case by case, then give per-case rows and per-class summaries.

Summaries (per class and metric): ``mean``, ``median`` and ``std`` (population std,
ddof=0) over the *finite* values, with counts: ``n`` finite values used, ``n_nan``
undefined values (only with ``both_empty="nan"``) and ``n_inf`` infinite HD95 values
(exactly one of prediction / ground truth empty). Nothing is dropped without being
counted; a statistic with no finite value is ``None``. Per class, ``n_both_empty`` says
how many cases had the class in neither mask (scored by the both-empty rule). ``mean_over_classes`` is the
unweighted mean of the class means (macro average).

When a case is added without an explicit class list, its classes are the non-zero
labels present in it. A class found in other cases but absent from both masks of this
case is then a both-empty class here, and its row is filled in with the both-empty
values (see `samtune.evaluation.metrics`), so every auto-classed case has a row for
every class seen anywhere. Cases added with explicit classes get rows for exactly those.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from samtune.evaluation.metrics import (
    BOTH_EMPTY_RULES,
    DEFAULT_NSD_TOLERANCE_MM,
    METRIC_NAMES,
    BothEmpty,
    ClassMetrics,
    binary_metrics,
    case_metrics,
    class_dice,
    present_labels,
    tolerance_for,
)

PER_CASE_COLUMNS: tuple[str, ...] = (
    "case", "class", "name", *METRIC_NAMES, "gt_voxels", "pred_voxels"
)


@dataclass
class _Case:
    metrics: dict[int, ClassMetrics]
    auto_classes: bool


def summarize_values(values: Sequence[float]) -> dict[str, float | int | None]:
    """mean / median / std over the finite values, with n, n_nan and n_inf counts."""
    array = np.asarray(values, dtype=np.float64)
    finite = array[np.isfinite(array)]
    has_values = finite.size > 0
    return {
        "mean": float(finite.mean()) if has_values else None,
        "median": float(np.median(finite)) if has_values else None,
        "std": float(finite.std()) if has_values else None,
        "n": int(finite.size),
        "n_nan": int(np.isnan(array).sum()),
        "n_inf": int(np.isinf(array).sum()),
    }


class MetricAccumulator:
    """Metrics of many cases, per class (Dice, IoU, HD95, NSD).

    Args:
        nsd_tolerance: NSD tolerance in the units of the spacing (mm), one for all
            classes or one per class label.
        both_empty: "perfect" (Dice 1, IoU 1, HD95 0, NSD 1) or "nan" (left out and
            counted) for a class absent from both prediction and ground truth.
        class_names: optional display names per class label.
        distance_unit: the unit HD95 and the tolerance are in, for reports.
    """

    def __init__(
        self,
        nsd_tolerance: float | Mapping[int, float] = DEFAULT_NSD_TOLERANCE_MM,
        both_empty: BothEmpty = "perfect",
        class_names: Mapping[int, str] | None = None,
        distance_unit: str = "mm",
    ) -> None:
        if both_empty not in BOTH_EMPTY_RULES:
            raise ValueError(f"both_empty must be one of {BOTH_EMPTY_RULES}, got {both_empty!r}")
        self.nsd_tolerance = nsd_tolerance
        self.both_empty = both_empty
        self.class_names = dict(class_names or {})
        self.distance_unit = distance_unit
        self._cases: dict[str, _Case] = {}

    def __len__(self) -> int:
        return len(self._cases)

    @property
    def case_ids(self) -> list[str]:
        return list(self._cases)

    @property
    def classes(self) -> list[int]:
        """Every class scored in any case, sorted."""
        return sorted({c for case in self._cases.values() for c in case.metrics})

    def add(
        self,
        case_id: str,
        pred_labels: np.ndarray,
        gt_labels: np.ndarray,
        spacing: float | Sequence[float] | None = None,
        classes: Sequence[int] | None = None,
    ) -> dict[int, ClassMetrics]:
        """Score one case: label maps of one shape, spacing per array axis (mm).

        Returns the case's metrics per class. A repeated ``case_id`` is an error.
        """
        if case_id in self._cases:
            raise ValueError(f"case {case_id!r} was already added")
        if classes is None:
            classes = present_labels(pred_labels, gt_labels)
            auto = True
        else:
            auto = False
        metrics = case_metrics(
            pred_labels,
            gt_labels,
            spacing=spacing,
            classes=classes,
            nsd_tolerance=self.nsd_tolerance,
            both_empty=self.both_empty,
        )
        self._cases[case_id] = _Case(metrics, auto)
        return metrics

    def _both_empty_metrics(self) -> ClassMetrics:
        empty = np.zeros((1, 1), dtype=bool)
        return binary_metrics(empty, empty, both_empty=self.both_empty)

    def _case_items(self) -> list[tuple[str, int, ClassMetrics]]:
        all_classes = self.classes
        filler = self._both_empty_metrics()
        items = []
        for case_id, case in self._cases.items():
            classes = all_classes if case.auto_classes else list(case.metrics)
            for c in classes:
                items.append((case_id, c, case.metrics.get(c, filler)))
        return items

    def per_case_rows(self) -> list[dict[str, object]]:
        """One row per (case, class), keys `PER_CASE_COLUMNS`, in the order added."""
        return [
            {"case": case_id, "class": c, "name": self.class_names.get(c, ""), **m.as_dict()}
            for case_id, c, m in self._case_items()
        ]

    def summary(self) -> dict[str, object]:
        """Per-class statistics of every metric; see the module docstring."""
        values: dict[int, dict[str, list[float]]] = {}
        both_empty: dict[int, int] = {}
        for _, c, m in self._case_items():
            per_metric = values.setdefault(c, {name: [] for name in METRIC_NAMES})
            for name in METRIC_NAMES:
                per_metric[name].append(getattr(m, name))
            both_empty[c] = both_empty.get(c, 0) + (m.gt_voxels == 0 and m.pred_voxels == 0)
        per_class: dict[int, dict[str, Any]] = {}
        for c in sorted(values):
            entry: dict[str, Any] = {  # JSON-like: names, counts, per-metric summaries
                "name": self.class_names.get(c, ""),
                "n_cases": len(values[c]["dice"]),
                "n_both_empty": both_empty[c],
            }
            entry.update({name: summarize_values(values[c][name]) for name in METRIC_NAMES})
            per_class[c] = entry
        mean_over_classes = {}
        for name in METRIC_NAMES:
            means = [e[name]["mean"] for e in per_class.values() if e[name]["mean"] is not None]
            mean_over_classes[name] = float(np.mean(means)) if means else None
        return {
            "n_cases": len(self._cases),
            "both_empty": self.both_empty,
            "distance_unit": self.distance_unit,
            "nsd_tolerance": {c: tolerance_for(self.nsd_tolerance, c) for c in per_class},
            "classes": per_class,
            "mean_over_classes": mean_over_classes,
        }


def mean_dice(
    pairs: Iterable[tuple[np.ndarray, np.ndarray]], classes: Sequence[int], both_empty: BothEmpty = "perfect"
) -> float | None:
    """Dice of (prediction, ground truth) label-map pairs as `samtune eval` summarises it:
    each class's mean over the pairs (finite values, see `summarize_values`), then the
    unweighted mean over classes (``summary()["mean_over_classes"]["dice"]``), with the
    same empty-mask rules. None when no value is finite (e.g. all both-empty under "nan").
    """
    per_class: dict[int, list[float]] = {int(c): [] for c in classes}
    for pred, gt in pairs:
        for c, dice in class_dice(pred, gt, classes, both_empty).items():
            per_class[c].append(dice)
    means = [summarize_values(v)["mean"] for v in per_class.values()]
    scored = [m for m in means if m is not None]
    return float(np.mean(scored)) if scored else None
