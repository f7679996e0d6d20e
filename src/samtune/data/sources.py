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

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from samtune.data.cases import Case, Problem, Source, group_by_parent
from samtune.data.source_folders import load_folders
from samtune.data.source_lists import load_list
from samtune.data.source_nnunet import load_nnunet
from samtune.errors import DataError
from samtune.registry import Registry

__all__ = ["SOURCES", "Case", "Problem", "Source", "SourceKind", "detect_kind", "group_by_parent", "load_source"]


@dataclass(frozen=True)
class SourceKind:
    """One kind of data source.

    Attributes:
        name: what ``--kind`` and messages call it.
        detect: True when an existing path is a source of this kind (kinds are tried in
            registration order).
        load: lists the cases of `path`; `root` is the folder relative rows resolve
            against (None: the kind's default).
        takes_root: False for kinds whose paths are fixed by their layout (``--root`` is refused).
        expects: what a path of this kind looks like, for the message when no kind matches.
    """

    name: str
    detect: Callable[[Path], bool]
    load: Callable[[Path, Path | None], Source]
    takes_root: bool
    expects: str


SOURCES: Registry[SourceKind] = Registry("source kind")
for _kind in (
    SourceKind("list", Path.is_file, load_list, True, "a .csv/.tsv list file"),
    SourceKind("nnunet", lambda path: (path / "dataset.json").is_file(), lambda path, root: load_nnunet(path),
               False, "an nnU-Net folder with dataset.json"),
    SourceKind("folders", lambda path: (path / "images").is_dir() and (path / "masks").is_dir(),
               lambda path, root: load_folders(path), False, "a folder with images/ and masks/ subfolders"),
):
    SOURCES.register(_kind.name, _kind)


def detect_kind(path: Path) -> str:
    """The name of the first registered kind that `path` is, else DataError saying why."""
    if not path.exists():
        raise DataError(f"data source not found: {path}")
    for name, kind in SOURCES.items():
        if kind.detect(path):
            return name
    expected = [kind.expects for _, kind in SOURCES.items()]
    raise DataError(
        f"{path} is not a recognised data source: expected {', '.join(expected[:-1])}, or {expected[-1]}"
    )


def load_source(path: str | Path, kind: str | None = None, root: str | Path | None = None) -> Source:
    """List the cases of a data source, detecting its kind.

    Args:
        path: list file, nnU-Net dataset folder, or folder with images/ and masks/.
        kind: force a registered kind ('list', 'nnunet' or 'folders') instead of detecting it.
        root: list files only: folder the rows' paths are relative to (default: the list's
            folder, or its parent when every path resolves there, as in the study's files).

    Returns:
        `Source` with its cases in a stable order and any row-level problems.
    """
    path = Path(path)
    source_kind = SOURCES.get(kind or detect_kind(path))
    if root is not None and not source_kind.takes_root:
        raise DataError(f"--root only applies to list files, not to a {source_kind.name} source ({path})")
    return source_kind.load(path, Path(root) if root is not None else None)
