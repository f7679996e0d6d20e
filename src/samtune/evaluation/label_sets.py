"""Do the predictions and the ground truth use the same label values?

Scoring compares class k of the prediction with class k of the ground truth. When the
two folders encode their classes differently (a 0/1 prediction against a 0/254/255
ground truth, a 0/255 `segment` mask against a 0/1 one), every value would be scored as
a class of its own and the Dice would be wrong without a word. `agree_label_sets` looks
at the non-zero values found over all matched files of each side (after its label map,
if one is given) and either accepts them, applies a printed binary rule when both sides
are plainly binary masks, or refuses with the flags that would fix the call.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from samtune.data.labels import LabelMap
from samtune.errors import UserError


@dataclass(frozen=True)
class LabelAgreement:
    """Outcome of the check: the maps to score with, and the rule applied (or None)."""

    label_map: LabelMap | None
    pred_label_map: LabelMap | None
    rule: str | None = None  # printed and recorded when a binary rule was applied


def _values_text(values: Iterable[int]) -> str:
    return "/".join(str(v) for v in [0, *sorted(values)])


def _flag_line(gt_mapped: bool, pred_mapped: bool, gt_values: Sequence[int], pred_values: Sequence[int]) -> str:
    """The flags that make both sides mean the same classes."""
    binary = " ".join(
        flag for flag, mapped in (("--label-map binary", gt_mapped), ("--pred-label-map binary", pred_mapped))
        if not mapped
    )
    line = f"add {binary} to score any non-zero value as one foreground class" if binary else ""
    if not gt_mapped and not pred_mapped and len(gt_values) == len(pred_values) > 1:
        names = [f"c{i}" for i in range(1, len(gt_values) + 1)]
        gt_spec = ",".join(f"{n}={v}" for n, v in zip(names, sorted(gt_values)))
        pred_spec = ",".join(f"{n}={v}" for n, v in zip(names, sorted(pred_values)))
        pairs = f"--label-map {gt_spec} --pred-label-map {pred_spec}"
        line += f", or name the pairs, e.g. {pairs}" if line else f"name the pairs, e.g. {pairs}"
    if set(pred_values) <= set(gt_values):
        line += (f", or, if the labels already mean the same classes, name them: --classes "
                 f"{' '.join(str(v) for v in sorted(gt_values))}")
    return line or "map both sides to the same classes with --label-map and --pred-label-map"


def agree_label_sets(
    pred_values: set[int],
    gt_values: set[int],
    label_map: LabelMap | None,
    pred_label_map: LabelMap | None,
    classes: Sequence[int] | None,
    pred_dir: Path,
    gt_dir: Path,
) -> LabelAgreement:
    """Accept, convert to binary (printed rule), or refuse with the fixing flags.

    ``pred_values`` / ``gt_values``: non-zero values over all matched files, after the
    side's label map when it has one (so classes 1..K). Accepted as they are: equal sets,
    a side without any foreground (nothing to compare), or (with explicit ``classes``) predictions whose
    labels are all ground-truth labels (a class the model never predicted).
    """
    unchanged = LabelAgreement(label_map, pred_label_map)
    if not pred_values or not gt_values or pred_values == gt_values:
        return unchanged  # one side without any foreground gives nothing to compare
    if classes is not None and pred_values <= gt_values:
        return unchanged
    if len(pred_values) == 1 and len(gt_values) == 1:
        # Two plain binary masks stored with different values (0/255 against 0/1).
        binary = LabelMap.binary()
        rule = (
            f"predictions hold {_values_text(pred_values)} and ground truth holds "
            f"{_values_text(gt_values)}: both scored as binary masks (any non-zero value = "
            "class 1); pass --label-map / --pred-label-map to score them otherwise"
        )
        return LabelAgreement(label_map or binary, pred_label_map or binary, rule)
    gt_what = "classes" if label_map is not None else "values"
    pred_what = "classes" if pred_label_map is not None else "values"
    raise UserError(
        f"predictions in {pred_dir} hold {pred_what} {_values_text(pred_values)} but the ground truth in "
        f"{gt_dir} holds {gt_what} {_values_text(gt_values)}, so classes would be scored against "
        f"different structures; "
        + _flag_line(label_map is not None, pred_label_map is not None, sorted(gt_values), sorted(pred_values))
    )


def nonzero_values(labels: np.ndarray) -> set[int]:
    """Distinct non-zero values of a class map."""
    found = np.unique(labels)
    return {int(v) for v in found if v != 0}
