"""What a data source lists: `Case` (image file(s), mask file, patient group), `Problem`
(a row-level fault, reported by `samtune data check`) and `Source` (the cases plus what the
source declares). The loaders of each kind build them; `samtune.data.sources` picks the kind.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from samtune.data.labels import LabelMap
from samtune.errors import DataError


@dataclass(frozen=True)
class Case:
    """One image (or volume) with its mask.

    Attributes:
        case_id: unique name within the source, e.g. 'BIDMC05_32' or 'prostate_00'.
        images: image file(s), one per channel (nnU-Net: CASE_0000, CASE_0001, ...), or a
            DICOM series folder.
        mask: label file, or None for unlabelled cases (nnU-Net imagesTs).
        group: patient/study id: splits never separate cases of one group.
        origin: where the case was declared, for messages (e.g. 'train.csv row 3').
    """

    case_id: str
    images: tuple[Path, ...]
    mask: Path | None
    group: str
    origin: str = ""

    def describe(self) -> str:
        """The case for messages: its origin or its image path."""
        return self.origin or str(self.images[0])


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a source, naming the file or row."""

    where: str
    message: str
    fatal: bool = True

    def __str__(self) -> str:
        level = "error" if self.fatal else "warning"
        return f"{level}: {self.where}: {self.message}"


@dataclass
class Source:
    """Cases of a dataset and what it declares about them.

    Attributes:
        kind: 'list', 'nnunet' or 'folders'.
        path: the list file or dataset folder.
        root: folder that relative paths were resolved against.
        cases: labelled (training) cases, in a stable order.
        test_cases: unlabelled cases (nnU-Net imagesTs), may be empty.
        labels: labels the source declares (nnU-Net dataset.json), else None.
        channel_names: one name per image channel, e.g. ['T2'] (nnU-Net), else [].
        problems: row-level problems found while listing files.
    """

    kind: str
    path: Path
    root: Path
    cases: list[Case]
    test_cases: list[Case] = field(default_factory=list)
    labels: LabelMap | None = None
    channel_names: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    def case(self, case_id: str) -> Case:
        """The case named ``case_id``."""
        for case in self.cases + self.test_cases:
            if case.case_id == case_id:
                return case
        raise DataError(f"no case '{case_id}' in {self.path}")

    @property
    def groups(self) -> dict[str, list[Case]]:
        """Cases per group (patient), in case order."""
        grouped: dict[str, list[Case]] = {}
        for case in self.cases:
            grouped.setdefault(case.group, []).append(case)
        return grouped


def group_by_parent(images: list[Path], case_ids: list[str], root: Path) -> list[str]:
    """Patient groups when a source gives none: the image's folder relative to ``root``.

    Images in nested folders (patientN/studyN/...) are grouped by folder; when all images
    share one folder, that folder says nothing about patients and each case is its own group.
    """
    parents = [image.parent for image in images]
    if len(set(parents)) <= 1:
        return list(case_ids)
    groups = []
    for parent in parents:
        try:
            groups.append(parent.relative_to(root).as_posix())
        except ValueError:
            groups.append(parent.as_posix())
    return groups
