"""DICOM series folders through SimpleITK/GDCM, with every member accounted for.

GDCM's series scan silently leaves out files it cannot parse (a truncated or garbage
``.dcm``), and ITK then reads the remaining slices with only a warning that names no
file ("Non uniform sampling or missing slices detected"). `read_dicom_series` refuses
instead, naming the file:

- a member that is not in the series: a ``.dcm`` / ``.dicom`` / ``.ima`` file, or a file
  with the DICOM preamble ("DICM" at byte 128), that GDCM could not read;
- a missing slice: a gap in the slice positions wider than 1.5 x the usual spacing.

With ``skip_bad=True`` (``--skip-bad-dicom`` on the command line, or the
`skip_bad_dicom` context) unreadable members are left out and each is named in a
warning; a remaining gap is reported as a warning too.
"""

from __future__ import annotations

import contextlib
import contextvars
import sys
from pathlib import Path
from typing import Iterator

import numpy as np
import SimpleITK as sitk

from samtune.data.formats_itk import _itk_message, _to_loaded
from samtune.data.geometry import LoadedImage
from samtune.errors import DataError

DICOM_SUFFIXES = (".dcm", ".dicom", ".ima")
SKIP_FLAG = "--skip-bad-dicom"
_SKIP_BAD = contextvars.ContextVar("samtune_skip_bad_dicom", default=False)
_GAP_FACTOR = 1.5  # a step this many times the median spacing means a missing slice


@contextlib.contextmanager
def skip_bad_dicom(enabled: bool = True) -> Iterator[None]:
    """Within this block, DICOM series reads leave out unreadable members with a warning."""
    token = _SKIP_BAD.set(enabled)
    try:
        yield
    finally:
        _SKIP_BAD.reset(token)


def _warn(message: str) -> None:
    print(f"samtune: warning: {message}", file=sys.stderr)


@contextlib.contextmanager
def _quiet_itk() -> Iterator[None]:
    """ITK's own warnings name no file; samtune reports what they would have said."""
    previous = sitk.ProcessObject.GetGlobalWarningDisplay()
    sitk.ProcessObject.SetGlobalWarningDisplay(False)
    try:
        yield
    finally:
        sitk.ProcessObject.SetGlobalWarningDisplay(previous)


def dicom_series_ids(folder: Path) -> list[str]:
    """SeriesInstanceUIDs of the DICOM series directly inside ``folder``."""
    with _quiet_itk():
        return list(sitk.ImageSeriesReader.GetGDCMSeriesIDs(str(folder)) or [])


def _looks_like_dicom(path: Path) -> bool:
    if path.suffix.lower() in DICOM_SUFFIXES:
        return True
    try:
        with open(path, "rb") as handle:
            handle.seek(128)
            return handle.read(4) == b"DICM"
    except OSError:
        return False


def _why_unreadable(path: Path) -> str:
    size = path.stat().st_size
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    try:
        with _quiet_itk():
            reader.ReadImageInformation()
    except RuntimeError:
        return f"not a readable DICOM file (truncated or corrupt; {size} bytes)"
    return f"its pixel data is incomplete ({size} bytes; truncated?)"


def _positions(names: list[str]) -> np.ndarray:
    """Each file's position along the slice normal, mm."""
    positions = []
    for name in names:
        reader = sitk.ImageFileReader()
        reader.SetFileName(name)
        with _quiet_itk():
            reader.ReadImageInformation()
        direction = np.array(reader.GetDirection()).reshape(3, 3) if reader.GetDimension() == 3 else np.eye(3)
        positions.append(float(np.dot(direction[:, 2], reader.GetOrigin()[:3])))
    return np.array(positions)


def _gap(names: list[str]) -> str | None:
    """'between A and B (gap of X mm, spacing Y mm)' for the widest gap, or None."""
    if len(names) < 3:
        return None
    try:
        positions = _positions(names)
    except RuntimeError:
        return None  # ITK's own read reports unreadable headers
    order = np.argsort(positions)
    steps = np.diff(positions[order])
    usual = float(np.median(steps))
    if usual <= 0:
        return None
    widest = int(np.argmax(steps))
    if steps[widest] <= _GAP_FACTOR * usual:
        return None
    first, second = Path(names[order[widest]]).name, Path(names[order[widest + 1]]).name
    return f"between {first} and {second} (a step of {steps[widest]:.3g} mm where slices are {usual:.3g} mm apart)"


def read_dicom_series(folder: Path, series_id: str | None = None, skip_bad: bool | None = None) -> LoadedImage:
    """Read one DICOM series from a folder into a volume [z, y, x] sorted by position.

    Args:
        folder: folder holding the series' files.
        series_id: SeriesInstanceUID when the folder holds several series.
        skip_bad: leave out unreadable members with a warning instead of refusing;
            None: the `skip_bad_dicom` context's setting (off by default).
    """
    folder = Path(folder)
    skip = _SKIP_BAD.get() if skip_bad is None else skip_bad
    ids = dicom_series_ids(folder)
    if not ids:
        raise DataError(f"no DICOM series found in folder {folder}; point to a folder of .dcm files")
    if series_id is None:
        if len(ids) > 1:
            raise DataError(
                f"folder {folder} holds {len(ids)} DICOM series ({', '.join(ids)}); "
                "put each series in its own folder"
            )
        series_id = ids[0]
    elif series_id not in ids:
        raise DataError(f"series {series_id} not found in {folder}; found {', '.join(ids)}")
    with _quiet_itk():
        names = list(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(folder), series_id))
        listed = {Path(name).resolve() for sid in ids
                  for name in sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(folder), sid)}
    members = sorted(p for p in folder.iterdir()
                     if p.is_file() and not p.name.startswith(".") and p.name.upper() != "DICOMDIR")
    unread = [p for p in members if p.resolve() not in listed and _looks_like_dicom(p)]
    for path in unread:
        reason = _why_unreadable(path)
        if not skip:
            more = f" (and {len(unread) - 1} more unreadable file(s))" if len(unread) > 1 else ""
            raise DataError(
                f"{path}: {reason}, so the DICOM series in {folder} would be read without it{more}; "
                f"replace or remove the file, or pass {SKIP_FLAG} to leave it out"
            )
        _warn(f"{path}: {reason}; left out of the DICOM series ({SKIP_FLAG})")
    gap = _gap(names)
    if gap and not skip:
        raise DataError(
            f"DICOM series in {folder}: slice(s) missing {gap}; add the missing file(s), or pass "
            f"{SKIP_FLAG} to read it with uneven slice spacing"
        )
    if gap:
        _warn(f"DICOM series in {folder}: slice(s) missing {gap}; read with uneven slice spacing ({SKIP_FLAG})")
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(names)
    try:
        with _quiet_itk():
            image = reader.Execute()
    except RuntimeError as error:
        raise DataError(f"cannot read DICOM series in {folder}: {_itk_message(error)}") from error
    return _to_loaded(image, folder)
