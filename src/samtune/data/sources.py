"""Where cases come from: list files, nnU-Net raw datasets and images/ + masks/ folders.

`load_source(path)` detects the kind and returns a `Source`: a list of `Case` (image
file(s), mask file, patient group) plus what the source declares (labels, channel
names). Loading only lists files; it reads no pixels. Row-level problems (a row with the
wrong number of columns, an image without a mask) are collected in ``Source.problems``
so that `samtune data check` can report all of them at once; structural problems (no
rows, no dataset.json labels, an unreadable list) raise `DataError` immediately.

Kinds:

- ``list``: a .csv / .tsv / .txt file of ``image,mask`` rows (see `samtune.data.source_lists`).
- ``nnunet``: a folder holding ``dataset.json`` (see `samtune.data.source_nnunet`).
- ``folders``: a folder holding ``images/`` and ``masks/`` (see `samtune.data.source_folders`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from samtune.data.labels import LabelMap
from samtune.errors import DataError

SOURCE_KINDS = ("list", "nnunet", "folders")


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


def detect_kind(path: Path) -> str:
    """'list', 'nnunet' or 'folders' for an existing path, else DataError saying why."""
    if path.is_file():
        return "list"
    if not path.exists():
        raise DataError(f"data source not found: {path}")
    if (path / "dataset.json").is_file():
        return "nnunet"
    if (path / "images").is_dir() and (path / "masks").is_dir():
        return "folders"
    raise DataError(
        f"{path} is not a recognised data source: expected a .csv/.tsv list file, an nnU-Net "
        "folder with dataset.json, or a folder with images/ and masks/ subfolders"
    )


def load_source(path: str | Path, kind: str | None = None, root: str | Path | None = None) -> Source:
    """List the cases of a data source, detecting its kind.

    Args:
        path: list file, nnU-Net dataset folder, or folder with images/ and masks/.
        kind: force 'list', 'nnunet' or 'folders' instead of detecting it.
        root: list files only: folder the rows' paths are relative to (default: the list's
            folder, or its parent when every path resolves there, as in the study's files).

    Returns:
        `Source` with its cases in a stable order and any row-level problems.
    """
    path = Path(path)
    kind = kind or detect_kind(path)
    if kind == "list":
        from samtune.data.source_lists import load_list

        return load_list(path, root=Path(root) if root is not None else None)
    if root is not None:
        raise DataError(f"--root only applies to list files, not to a {kind} source ({path})")
    if kind == "nnunet":
        from samtune.data.source_nnunet import load_nnunet

        return load_nnunet(path)
    if kind == "folders":
        from samtune.data.source_folders import load_folders

        return load_folders(path)
    raise DataError(f"unknown source kind '{kind}'; choose one of {', '.join(SOURCE_KINDS)}")


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
