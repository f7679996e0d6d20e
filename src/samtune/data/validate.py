"""Check a data source before training: every problem on its own line, naming the file.

`check_source` reads every case once (the same reads and checks training does; training
builds its dataset from these very reads through ``on_case``, see
`samtune.data.dataset.SliceDataset.checked`) and
collects a `Report`: counts, image sizes and spacings, label values found per class,
empty masks, and `Problem`s. A problem is *fatal* when it would break training (a
missing or unreadable file, size or geometry mismatch, NaN, undeclared label value,
4D image, no foreground anywhere); warnings (an empty mask, a constant image, an unused
column) are reported but do not stop training. `samtune data check` prints the report
and exits with code 2 on fatal problems; `samtune train` calls `Report.raise_if_fatal`.

`check_image_files(paths)` does the same for the loose inputs of `samtune predict`
(image files and DICOM series folders): every file is read and decoded once, checked
for truncation and NaN/inf, before anything is written.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from samtune.data.case_io import CaseData, check_intensities, read_channels, read_mask_for, select_channels
from samtune.data.labels import LabelMap, require_integer_labels
from samtune.data.readers import read_image
from samtune.data.slicing import check_axis, foreground_per_slice
from samtune.data.sources import Case, Problem, Source, load_source
from samtune.errors import DataError


def _keeps_geometry(path) -> bool:
    from samtune.data.readers import format_for

    try:
        return Path(path).is_dir() or format_for(Path(path)).keeps_geometry
    except Exception:  # an unknown format was reported when it was read
        return True


@dataclass
class CaseSummary:
    """What one readable case holds."""

    case_id: str
    shape: tuple[int, ...]  # spatial, array order
    spacing: tuple[float, ...] | None  # array order, mm; None for formats without spacing (PNG...)
    slices: int
    foreground_slices: int
    values: dict[int | float, int]  # stored mask value (a float where not an integer) -> pixel count


@dataclass
class Report:
    """Result of `check_source`."""

    source: Source
    labels: LabelMap
    axis: int
    cases: list[CaseSummary] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    @property
    def fatal(self) -> list[Problem]:
        """Problems that would break training."""
        return [p for p in self.problems if p.fatal]

    @property
    def empty_cases(self) -> list[str]:
        """Cases whose mask holds no foreground."""
        return [c.case_id for c in self.cases if c.foreground_slices == 0]

    def raise_if_fatal(self) -> None:
        """DataError with the first fatal problems, for `samtune train`."""
        fatal = self.fatal
        if fatal:
            more = f" (and {len(fatal) - 1} more; run `samtune data check {self.source.path}`)" if len(fatal) > 1 else ""
            raise DataError(f"{fatal[0].where}: {fatal[0].message}{more}")

    def format(self) -> str:
        """Human-readable report, one problem per line."""
        src = self.source
        lines = [f"source: {src.kind} {src.path} (paths relative to {src.root})",
                 f"cases: {len(src.cases)} labelled in {len(src.groups)} patient group(s)"
                 + (f", {len(src.test_cases)} unlabelled" if src.test_cases else ""),
                 f"labels: {self.labels.describe()}"]
        if self.cases:
            total = sum(c.slices for c in self.cases)
            with_fg = sum(c.foreground_slices for c in self.cases)
            lines.append(f"slices: {total} (axis {self.axis} for volumes), {with_fg} with foreground")
            lines.append("image sizes: " + _tally("x".join(map(str, c.shape)) for c in self.cases))
            lines.append("spacings (mm): " + _tally(
                "x".join(f"{s:.3g}" for s in c.spacing) if c.spacing is not None
                else "none (the format stores no spacing; distances in pixels)" for c in self.cases))
            lines.append("label values:")
            per_value: dict[int | float, list[int]] = {}
            for c in self.cases:
                for value, count in c.values.items():
                    per_value.setdefault(value, []).append(count)
            for value in sorted(per_value):
                counts = per_value[value]
                lines.append(f"  {value}: {self.labels.class_of_value(value)}, in {len(counts)} case(s), "
                             f"{sum(counts)} pixels")
            empty = self.empty_cases
            lines.append(f"empty masks: {len(empty)}" + (f" ({', '.join(empty[:10])})" if empty else ""))
        fatal = len(self.fatal)
        lines.append(f"problems: {fatal} error(s), {len(self.problems) - fatal} warning(s)")
        lines.extend(str(p) for p in self.problems)
        return "\n".join(lines)


def _tally(items) -> str:
    counts = Counter(items)
    return ", ".join(f"{key} ({n})" for key, n in counts.most_common(5)) + (
        f", ... {len(counts) - 5} more" if len(counts) > 5 else "")


def _check_case(case: Case, labels: LabelMap, axis: int, channels, report: Report) -> CaseData | None:
    """Check one case; its pixels when they passed every fatal check, else None."""
    where = case.describe()
    missing = [p for p in (*case.images, case.mask) if p is not None and not Path(p).exists()]
    for path in missing:
        report.problems.append(Problem(where, f"file not found: {path}"))
    if case.mask is None:
        report.problems.append(Problem(where, f"no mask given for {case.images[0]}"))
    if missing or case.mask is None:
        return None
    try:
        image = read_channels(case)
        check_intensities(image)
        select_channels(CaseData(case, image.array, image.geometry, None), channels)
        check_axis(axis, image.spatial_ndim)
    except DataError as error:
        report.problems.append(Problem(where, str(error)))
        return None
    if image.array.size and image.array.min() == image.array.max():
        report.problems.append(Problem(where, f"{image.path}: image is constant ({image.array.flat[0]})", fatal=False))
    try:
        mask = read_mask_for(case, image)
        require_integer_labels(mask, labels, str(case.mask))
    except DataError as error:
        report.problems.append(Problem(where, str(error)))
        return None
    if str(case.mask).lower().endswith((".jpg", ".jpeg")):
        report.problems.append(Problem(where, f"{case.mask}: JPEG masks are lossy (compression noise around "
                                       "edges becomes label values); store masks as PNG", fatal=False))
    values, counts = np.unique(mask, return_counts=True)
    found = {(int(v) if float(v).is_integer() else float(v)): int(n) for v, n in zip(values, counts)}
    bad = labels.undeclared(found)
    if bad:
        report.problems.append(Problem(
            where, f"{case.mask}: label value(s) {bad} not declared ({labels.describe()}); "
            "add them to the label mapping or fix the mask"))
        classes = mask != 0
        usable = False
    else:
        usable = True
        classes = labels.apply(mask, where=str(case.mask))
    use_axis = check_axis(axis, image.spatial_ndim)
    fg = foreground_per_slice(classes, use_axis)
    # PNG/JPEG/TIFF carry no spacing: their 1x1 is a placeholder, not a measurement.
    spacing = image.geometry.array_spacing if _keeps_geometry(case.images[0]) else None
    report.cases.append(CaseSummary(case.case_id, image.spatial_shape, spacing, len(fg), int(fg.sum()), found))
    if not fg.any():
        report.problems.append(Problem(where, f"{case.mask}: mask is empty (no foreground for {labels.describe()})",
                                       fatal=False))
    return CaseData(case, image.array, image.geometry, mask) if usable else None


def check_source(
    source: Source | str | Path,
    labels: LabelMap | None = None,
    axis: int = 0,
    channels: tuple[int, ...] | None = None,
    on_case: Callable[[int, CaseData], None] | None = None,
) -> Report:
    """Read and check every labelled case of ``source``.

    Args:
        source: a `Source` or anything `load_source` accepts.
        labels: label mapping to check masks against; default: the source's declared
            labels, else binary (any non-zero value is foreground).
        axis: slicing axis used to count slices of volumes.
        channels: image channels training will use (see `SliceDatasetConfig.channels`).
        on_case: called as ``on_case(case number, pixels)`` for every case that passed the
            fatal checks, in source order, so a caller can use the pixels this check read
            instead of reading them again; a DataError it raises is reported as a fatal
            problem of that case.
    """
    if not isinstance(source, Source):
        source = load_source(source)
    labels = labels or source.labels or LabelMap.binary()
    report = Report(source, labels, axis, problems=list(source.problems))
    image_users: dict[Path, str] = {}
    for number, case in enumerate(source.cases):
        first = Path(case.images[0])
        if first in image_users:
            report.problems.append(Problem(case.describe(), f"image {first} is also used by {image_users[first]}",
                                           fatal=False))
        image_users.setdefault(first, case.describe())
        data = _check_case(case, labels, axis, channels, report)
        if data is not None and on_case is not None:
            try:
                on_case(number, data)
            except DataError as error:
                report.problems.append(Problem(case.describe(), str(error)))
    if report.cases and not any(c.foreground_slices for c in report.cases):
        report.problems.append(Problem(str(source.path), f"no mask holds foreground for {labels.describe()}; "
                                       "check the label mapping"))
    return report


@dataclass(frozen=True)
class ImageCheck:
    """What `check_image_files` found in one readable input."""

    path: Path
    shape: tuple[int, ...]  # the array's shape, [y, x(, C)] or [z, y, x(, C)]
    spatial_ndim: int  # 2 or 3


def check_image_files(paths: Sequence[str | Path], role: str = "image") -> list[ImageCheck]:
    """Read every input once (decodable, complete, finite) before anything is written.

    Args:
        paths: image files or DICOM series folders, as `read_image` takes them.
        role: "image", or "mask" to read palette PNGs as label indices.

    Returns:
        One `ImageCheck` per path, in order.

    Raises:
        DataError: one line naming the first bad input (and how many more are bad).
    """
    checks: list[ImageCheck] = []
    errors: list[str] = []
    for path in paths:
        try:
            image = read_image(path, role=role)  # type: ignore[arg-type]
        except DataError as error:
            errors.append(str(error))
            continue
        checks.append(ImageCheck(Path(path), tuple(image.array.shape), image.spatial_ndim))
    if errors:
        more = f" ({len(errors) - 1} more of the {len(paths)} inputs are refused too)" if len(errors) > 1 else ""
        raise DataError(f"{errors[0]}{more}")
    return checks
