"""Evaluate a folder of predictions against a folder of ground-truth label files.

Files are matched by case name: the file name without its image extension
(``case_01.nii.gz`` -> ``case_01``), so a prediction may be stored in another format than
its ground truth. Names found on one side only, and files that are not images, are
reported, never silently dropped. A prediction must lie on its ground truth's pixel grid:
same spatial shape, spacing, origin and direction, or the evaluation stops with an error
naming both files. Metrics use the ground truth's spacing (array-axis order).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from samtune.data.geometry import LoadedImage
from samtune.data.labels import LabelMap, label_array, require_integer_labels
from samtune.data.readers import extension_of, format_for, is_image_path, read_image
from samtune.errors import DataError, UserError
from samtune.evaluation.accumulator import MetricAccumulator
from samtune.evaluation.evaluate import EvalCase, evaluate_cases
from samtune.evaluation.label_sets import agree_label_sets, nonzero_values
from samtune.evaluation.metrics import DEFAULT_NSD_TOLERANCE_MM, BothEmpty

# Scoring every label found is refused above this many distinct values per file.
MAX_AUTO_CLASSES = 100
# `samtune predict --overlay` puts its pictures in this subfolder of the output folder,
# where they are neither label files nor "skipped entries" worth a warning.
PICTURES_FOLDER = "overlays"


def case_name(path: Path) -> str:
    """File name without its image extension, handling double suffixes like .nii.gz."""
    name = Path(path).name
    return name[: len(name) - len(extension_of(name))]


@dataclass
class FolderMatch:
    """Result of pairing two folders by case name."""

    pairs: list[tuple[str, Path, Path]]  # (case, prediction, ground truth), sorted by case
    prediction_only: list[str] = field(default_factory=list)
    ground_truth_only: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # entries that are not image files
    label_rule: str | None = None  # set by evaluate_folders when a binary rule was applied

    def report(self) -> dict[str, list[str]]:
        """JSON-friendly unmatched/skipped lists."""
        return {
            "prediction_only": self.prediction_only,
            "ground_truth_only": self.ground_truth_only,
            "skipped": self.skipped,
        }


def _index_folder(folder: Path, role: str, skipped: list[str]) -> dict[str, Path]:
    if not folder.is_dir():
        raise UserError(f"{role} folder not found: {folder}")
    index: dict[str, Path] = {}
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith(".") or (entry.name == PICTURES_FOLDER and entry.is_dir()):
            continue
        if entry.is_dir() or not is_image_path(entry):
            skipped.append(str(entry))
            continue
        name = case_name(entry)
        if name in index:
            raise UserError(
                f"two {role} files for case '{name}': {index[name]} and {entry}; keep one"
            )
        index[name] = entry
    return index


def match_folders(pred_dir: Path, gt_dir: Path) -> FolderMatch:
    """Pair prediction and ground-truth files by case name; error if none pair up."""
    skipped: list[str] = []
    preds = _index_folder(Path(pred_dir), "prediction", skipped)
    gts = _index_folder(Path(gt_dir), "ground-truth", skipped)
    common = sorted(preds.keys() & gts.keys())
    if not common:
        raise UserError(
            f"no prediction in {pred_dir} has a ground-truth file of the same name in {gt_dir} "
            f"({len(preds)} predictions, {len(gts)} ground-truth files); files are matched by "
            "name without extension, e.g. case_01.png <-> case_01.nii.gz"
        )
    return FolderMatch(
        pairs=[(name, preds[name], gts[name]) for name in common],
        prediction_only=sorted(preds.keys() - gts.keys()),
        ground_truth_only=sorted(gts.keys() - preds.keys()),
        skipped=skipped,
    )


def class_labels(loaded: LoadedImage, label_map: LabelMap | None = None) -> np.ndarray:
    """The integer class map of a mask file, [y, x] or [z, y, x]; refuses anything lossy.

    ``label_map`` turns stored values into classes 1..K (an undeclared value is an error);
    without it the stored values are the classes.
    """
    where = str(loaded.path)
    array = label_array(loaded)  # one channel, finite, no negative integers
    # Without a binary threshold in the map, fractional values are refused.
    require_integer_labels(array, label_map or LabelMap.binary(), where)
    if label_map is not None:
        return label_map.apply(array, where)
    if array.size and array.min() < 0:
        raise DataError(f"{where} holds negative label values; labels must be >= 0")
    return array.astype(np.int64)


def check_same_grid(pred: LoadedImage, gt: LoadedImage) -> None:
    """Raise a DataError naming both files if they do not share one pixel grid."""
    if pred.spatial_shape != gt.spatial_shape:
        raise DataError(
            f"prediction {pred.path} has shape {pred.spatial_shape} but ground truth {gt.path} "
            f"has shape {gt.spatial_shape}; predictions must be on the ground truth's grid"
        )
    differences = pred.geometry.differences(gt.geometry)
    if differences:
        raise DataError(
            f"prediction {pred.path} and ground truth {gt.path} differ in geometry "
            f"({'; '.join(differences)}, prediction vs ground truth); resample the prediction "
            "onto the ground truth's grid"
        )


def distance_unit(gt_paths: Sequence[Path]) -> str:
    """'mm' when every ground-truth format stores spacing, 'pixel' when none does."""
    kept = {format_for(path).keeps_geometry for path in gt_paths}
    return "mm" if kept == {True} else "pixel" if kept == {False} else "mm or pixel"


def _check_label_count(labels: np.ndarray, path: Path) -> None:
    """Catch an intensity image passed as a label file before scoring each value as a class."""
    count = len(np.unique(labels))
    if count > MAX_AUTO_CLASSES:
        raise DataError(
            f"{path} holds {count} distinct values; is it an image rather than a label file? "
            "If it really is a label map, name the classes to score with --classes"
        )


def _read_pairs(
    match: FolderMatch,
    label_map: LabelMap | None,
    pred_label_map: LabelMap | None,
    auto_classes: bool,
) -> Iterator[tuple[str, np.ndarray, np.ndarray, LoadedImage]]:
    for name, pred_path, gt_path in match.pairs:
        pred = read_image(pred_path, role="mask")
        gt = read_image(gt_path, role="mask")
        check_same_grid(pred, gt)
        pred_labels = class_labels(pred, pred_label_map)
        gt_labels = class_labels(gt, label_map)
        if auto_classes:
            _check_label_count(pred_labels, pred_path)
            _check_label_count(gt_labels, gt_path)
        yield name, pred_labels, gt_labels, gt


def _cases(
    match: FolderMatch,
    label_map: LabelMap | None,
    pred_label_map: LabelMap | None,
    auto_classes: bool,
) -> Iterator[EvalCase]:
    for name, pred_labels, gt_labels, gt in _read_pairs(match, label_map, pred_label_map, auto_classes):
        yield EvalCase(name, pred_labels, gt_labels, spacing=gt.geometry.array_spacing)


def evaluate_folders(
    pred_dir: Path,
    gt_dir: Path,
    classes: Sequence[int] | None = None,
    nsd_tolerance: float | Mapping[int, float] = DEFAULT_NSD_TOLERANCE_MM,
    both_empty: BothEmpty = "perfect",
    class_names: Mapping[int, str] | None = None,
    label_map: LabelMap | None = None,
    pred_label_map: LabelMap | None = None,
) -> tuple[MetricAccumulator, FolderMatch]:
    """Match, read (one case at a time), check grids and score every matched case.

    ``label_map`` maps stored ground-truth values to classes 1..K (e.g.
    ``parse_label_spec("central=254,peripheral=255")``); ``pred_label_map`` does the same
    for predictions (samtune's own predictions already hold classes 1..K). Class names
    default to the ground-truth map's names. Returns the accumulator and the match
    (whose ``prediction_only`` / ``ground_truth_only`` / ``skipped`` lists and
    ``label_rule`` must be shown). Label values that differ between the two sides are
    refused (`samtune.evaluation.label_sets`) unless both are plain binary masks.
    """
    match = match_folders(pred_dir, gt_dir)
    # A first pass over the files compares the label values of both sides, so that
    # differently encoded folders are refused (or a printed binary rule applied) before
    # any score is computed or written.
    pred_values: set[int] = set()
    gt_values: set[int] = set()
    for _, pred_labels, gt_labels, _ in _read_pairs(match, label_map, pred_label_map, classes is None):
        pred_values |= nonzero_values(pred_labels)
        gt_values |= nonzero_values(gt_labels)
    agreement = agree_label_sets(
        pred_values, gt_values, label_map, pred_label_map, classes, Path(pred_dir), Path(gt_dir)
    )
    label_map, pred_label_map, match.label_rule = agreement.label_map, agreement.pred_label_map, agreement.rule
    if label_map is not None:
        class_names = {**dict(enumerate(label_map.classes, start=1)), **(class_names or {})}
    accumulator = evaluate_cases(
        _cases(match, label_map, pred_label_map, auto_classes=classes is None),
        classes=classes,
        nsd_tolerance=nsd_tolerance,
        both_empty=both_empty,
        class_names=class_names,
        distance_unit=distance_unit([gt for _, _, gt in match.pairs]),
    )
    return accumulator, match
