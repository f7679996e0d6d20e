"""A per-case quality-control score: how much ensemble members and TTA variants disagree.

Every variant (each run of an ensemble, under each test-time flip) gives its own label
map (the argmax of its probabilities); the ensemble's label map is the argmax of their
mean. Per case (a 2D image, or a whole volume, counted in 3D) and per class present in
either map, the Dice between a variant's map and the ensemble's is computed;

    disagreement = 1 - mean over variants of (mean over classes of that Dice)

0 means all variants drew the same labels; larger means less agreement. It needs two or
more variants (with one it is 0). Cases with high disagreement are the ones to review
first: `qc.csv` lists it beside each prediction (sort by it, descending). A case where
no variant labels anything scores 0.

The mean IoU that SAM's IoU head predicts is the second QC signal where that head was
trained: samtune's fine-tuning objectives do not train it, so for fine-tuned runs the
``predicted_iou`` column is empty rather than filled with an untrained head's output.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from samtune.atomic import atomic_path

QC_COLUMNS = ("case", "disagreement", "variants", "predicted_iou", "output")


@dataclass
class Disagreement:
    """Accumulates, over the slices of one case, each variant's overlap with the consensus.

    ``intersection`` / ``sizes`` are [variants, classes + 1] voxel counts (class 0 unused).
    """

    variants: int
    classes: int
    intersection: np.ndarray = field(init=False)
    sizes: np.ndarray = field(init=False)  # |variant == k| + |consensus == k|

    def __post_init__(self) -> None:
        self.intersection = np.zeros((self.variants, self.classes + 1), dtype=np.int64)
        self.sizes = np.zeros((self.variants, self.classes + 1), dtype=np.int64)

    def update(self, variant_labels: Sequence[np.ndarray], consensus: np.ndarray) -> None:
        """Add one slice: a label map per variant and the consensus labels, same shape."""
        counts_consensus = np.bincount(consensus.ravel(), minlength=self.classes + 1)
        for index, labels in enumerate(variant_labels):
            same = labels[labels == consensus]
            self.intersection[index] += np.bincount(same.ravel(), minlength=self.classes + 1)
            self.sizes[index] += np.bincount(labels.ravel(), minlength=self.classes + 1) + counts_consensus

    def score(self) -> float:
        """The disagreement (module docstring) of everything added so far."""
        present = self.sizes[:, 1:].sum(axis=0) > 0
        if not present.any():
            return 0.0
        sizes = self.sizes[:, 1:][:, present]
        dice = 2 * self.intersection[:, 1:][:, present] / np.maximum(sizes, 1)
        dice = np.where(sizes > 0, dice, 1.0)  # this variant and the consensus both lack the class
        return float(1.0 - dice.mean(axis=1).mean())


def write_qc_csv(rows: Sequence[dict[str, Any]], path: str | Path) -> Path:
    """``qc.csv``: one row per case (columns `QC_COLUMNS`), atomically."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(QC_COLUMNS), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: "" if row.get(key) is None else row.get(key) for key in QC_COLUMNS})
    with atomic_path(path) as tmp:
        tmp.write_text(buffer.getvalue(), encoding="utf-8", newline="")
    return Path(path)
