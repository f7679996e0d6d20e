"""Checks on output locations, made before anything is written.

Every command checks where it will write before it reads a model or writes a file, so a
bad `--out` is refused in one line and leaves the file system as it was. The checks
create nothing: writability is probed with a temporary file in the nearest existing
folder, removed at once.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Iterable

from samtune.errors import UserError


def _nearest_existing(path: Path) -> Path:
    current = path.absolute()
    while not current.exists() and current != current.parent:
        current = current.parent
    return current


def _check_creatable(path: Path, flag: str) -> None:
    """`path` does not exist: its nearest existing ancestor must be a writable folder."""
    ancestor = _nearest_existing(path)
    if not ancestor.is_dir():
        raise UserError(f"cannot create {path}: {ancestor} is a file, not a folder; choose another {flag}")
    _check_writable(ancestor, path, flag)


def _check_writable(folder: Path, target: Path, flag: str) -> None:
    try:
        handle, probe = tempfile.mkstemp(dir=folder, prefix=".samtune-probe-")
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise UserError(f"cannot write {target}: {folder} is not writable ({reason}); choose another {flag}") from None
    os.close(handle)
    os.unlink(probe)


def check_output_folder(path: str | Path, overwrite: bool = False, flag: str = "--out") -> Path:
    """Refuse an output folder that cannot be created or would replace data without `overwrite`.

    An existing empty folder is accepted; an existing non-empty one needs `overwrite`
    (the caller replaces it only after all its other checks have passed).
    """
    path = Path(path)
    if path.exists() or path.is_symlink():
        if not path.is_dir():
            raise UserError(f"{flag} {path} is a file, not a folder; remove it or choose another {flag}")
        if any(path.iterdir()) and not overwrite:
            raise UserError(f"{flag} {path} already exists and is not empty; pass --overwrite to replace it "
                            f"or choose another {flag}")
        _check_writable(path, path, flag)
        return path
    _check_creatable(path, flag)
    return path


def check_output_file(path: str | Path, overwrite: bool = False, flag: str = "--out") -> Path:
    """Refuse an output file whose folder cannot be created, that is a folder, or exists without `overwrite`."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{flag} {path} is a folder; give a file name")
    if path.exists() and not overwrite:
        raise UserError(f"{flag} {path} already exists; pass --overwrite to replace it or choose another {flag}")
    if path.parent.exists():
        if not path.parent.is_dir():
            raise UserError(f"cannot create {path}: {path.parent} is a file, not a folder; choose another {flag}")
        _check_writable(path.parent, path, flag)
    else:
        _check_creatable(path.parent, flag)
    return path


def check_outputs_in(
    folder: str | Path, names: Iterable[str | Path], overwrite: bool = False, flag: str = "--out"
) -> list[Path]:
    """Refuse an output folder that cannot receive the files `names` (relative to it).

    The folder may exist and hold other files (a predictions folder filled over several
    runs); each named file must be free, or `overwrite` given, and must not be a folder.
    Returns the full paths of the named files.
    """
    folder = Path(folder)
    if folder.exists() or folder.is_symlink():
        if not folder.is_dir():
            raise UserError(f"{flag} {folder} is a file, not a folder; remove it or choose another {flag}")
        _check_writable(folder, folder, flag)
    else:
        _check_creatable(folder, flag)
    paths = [folder / name for name in names]
    for path in paths:
        if path.is_dir():
            raise UserError(f"{path} is a folder where an output file goes; remove it or choose another {flag}")
    taken = [path for path in paths if path.exists()]
    if taken and not overwrite:
        more = f" (and the {len(taken) - 1} other existing outputs)" if len(taken) > 1 else ""
        raise UserError(f"{taken[0]} already exists; pass --overwrite to replace it{more} or choose another {flag}")
    return paths
