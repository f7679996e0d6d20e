"""Check a volume file's pixel data against what its header promises, before SimpleITK reads it.

SimpleITK (ITK 5.4) zero-fills a truncated NIfTI file, plain or gzipped, without a
word, and reports truncated NRRD / MetaImage files with messages that name no file
(MetaImage even says "No such file or directory"). `check_payload(path)` reads the
header, computes the bytes of pixel data it promises (size x components x bytes per
value), and measures the data actually there: the file's length after the header for
raw data, the decompressed length for gzip / bzip2 / zlib data (streamed, so memory
stays small). Less data than promised raises `DataError` naming the file.

NIfTI is also scanned for NaN / inf in the same pass: ITK 5's NIfTI reader turns them
into 0 (fixed in ITK 6, InsightSoftwareConsortium/ITK#6683), so they must be found in
the raw bytes.

Layouts the check cannot measure (ASCII NRRD, multi-file lists, data at the end of a
file of unknown length) are left to SimpleITK.
"""

from __future__ import annotations

import bz2
import gzip
import io
import math
import zlib
from pathlib import Path
from typing import BinaryIO, Callable, Iterator

import numpy as np

from samtune.errors import DataError

_CHUNK = 1 << 23  # bytes per read while streaming a payload (8 MiB: few Python-level steps)
_NIFTI_FLOAT = {16: "f4", 64: "f8"}  # NIfTI datatype code -> numpy float kind


def _incomplete(path: Path, expected: int, found: int, what: str = "the file holds",
                header: Path | None = None) -> DataError:
    named = f"{path} (the data file of {header.name})" if header is not None and header != path else str(path)
    return DataError(
        f"{named}: truncated: the header promises {expected} bytes of pixel data but {what} {found}; "
        "the file is incomplete (an interrupted copy or download?): copy or export it again"
    )


def _chunks(handle: BinaryIO | io.BufferedIOBase, limit: int) -> Iterator[bytes]:
    """Up to ``limit`` bytes of ``handle`` in chunks; stops early at end of data."""
    left = limit
    while left > 0:
        chunk = handle.read(min(_CHUNK, left))
        if not chunk:
            return
        left -= len(chunk)
        yield chunk


def _zlib_chunks(handle: BinaryIO, limit: int) -> Iterator[bytes]:
    """Decompressed bytes of a zlib (or gzip) stream, up to ``limit``; EOFError if it stops early."""
    inflater = zlib.decompressobj(47)  # 32 + 15: zlib or gzip header, detected
    produced = 0
    while produced < limit:
        data = inflater.unconsumed_tail or handle.read(_CHUNK)
        if not data:
            raise EOFError("compressed stream ended before its end marker")
        out = inflater.decompress(data, _CHUNK)
        produced += len(out)
        yield out
        if inflater.eof:
            return


def _measure(path: Path, stream: Iterator[bytes], expected: int, float_kind: str | None = None) -> tuple[int, int]:
    """(payload bytes found up to ``expected``, NaN/inf count when ``float_kind`` is given)."""
    found, nonfinite, carry = 0, 0, b""
    try:
        for chunk in stream:
            found += len(chunk)
            if float_kind is not None:
                data = carry + chunk
                usable = len(data) // np.dtype(float_kind).itemsize * np.dtype(float_kind).itemsize
                values = np.frombuffer(data[:usable], dtype=float_kind)
                nonfinite += int(values.size - np.isfinite(values).sum())
                carry = data[usable:]
    except (EOFError, OSError, zlib.error) as error:
        raise DataError(
            f"{path}: the compressed pixel data is cut short or corrupt ({error}) after {found} of "
            f"{expected} bytes; the file is incomplete: copy or export it again"
        ) from None
    return found, nonfinite


def _nifti_header(head: bytes, path: Path) -> tuple[str, int, list[int], int, int] | None:
    """(byte order, datatype, dims, bits per voxel, data offset) of a NIfTI-1/2 header."""
    if len(head) < 348:
        raise DataError(f"{path}: only {len(head)} bytes, too short for a NIfTI header; the file is truncated")
    for order in ("<", ">"):
        size = int(np.frombuffer(head[:4], dtype=f"{order}i4")[0])
        if size == 348:
            dims = np.frombuffer(head[40:56], dtype=f"{order}i2").astype(int).tolist()
            datatype = int(np.frombuffer(head[70:72], dtype=f"{order}i2")[0])
            bitpix = int(np.frombuffer(head[72:74], dtype=f"{order}i2")[0])
            offset = float(np.frombuffer(head[108:112], dtype=f"{order}f4")[0])
            return order, datatype, dims, bitpix, max(352, int(offset)) if math.isfinite(offset) else 352
        if size == 540:
            if len(head) < 540:
                raise DataError(f"{path}: only {len(head)} bytes, too short for a NIfTI-2 header; the file is truncated")
            dims = np.frombuffer(head[16:80], dtype=f"{order}i8").astype(int).tolist()
            datatype = int(np.frombuffer(head[12:14], dtype=f"{order}i2")[0])
            bitpix = int(np.frombuffer(head[14:16], dtype=f"{order}i2")[0])
            offset = int(np.frombuffer(head[168:176], dtype=f"{order}i8")[0])
            return order, datatype, dims, bitpix, max(544, offset)
    return None  # not NIfTI: SimpleITK will say so


def check_nifti(path: Path) -> int:
    """Refuse a truncated .nii / .nii.gz; returns the NaN/inf count of float data (0 otherwise)."""
    compressed = path.name.lower().endswith(".gz")
    opener = gzip.open if compressed else open
    try:
        with opener(path, "rb") as handle:
            head = handle.read(540)
            header = _nifti_header(head, path)
            if header is None:
                return 0
            order, datatype, dims, bitpix, offset = header
            rank = dims[0]
            if not 1 <= rank <= 7 or bitpix <= 0 or any(d < 0 for d in dims[1: rank + 1]):
                return 0  # a malformed header: SimpleITK's error says more
            expected = math.prod(dims[1: rank + 1]) * bitpix // 8
            kind = _NIFTI_FLOAT.get(datatype)
            float_kind = f"{order}{kind}" if kind else None
            if not compressed and float_kind is None:
                found = max(0, path.stat().st_size - offset)
                if found < expected:
                    raise _incomplete(path, expected, found)
                return 0
            handle.seek(offset)  # gzip files seek by decompressing: cheap for a header
            stream = _chunks(handle, expected)
            found, nonfinite = _measure(path, stream, expected, float_kind)
    except (EOFError, gzip.BadGzipFile, zlib.error) as error:
        raise DataError(f"cannot read {path}: not a complete gzip file ({error}); copy or export it again "
                        "(an interrupted copy or download?)") from None
    if found < expected:
        raise _incomplete(path, expected, found, "the (decompressed) file holds" if compressed else "the file holds")
    return nonfinite


def _sitk_expected_bytes(path: Path) -> int | None:
    """Pixel-data bytes the header describes, from SimpleITK's header-only read."""
    import SimpleITK as sitk

    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    try:
        reader.ReadImageInformation()
    except RuntimeError:
        return None  # SimpleITK's full read reports the header problem
    probe = sitk.Image([1] * reader.GetDimension(), reader.GetPixelID())
    itemsize = sitk.GetArrayViewFromImage(probe).itemsize  # bytes per component
    return math.prod(reader.GetSize()) * reader.GetNumberOfComponents() * itemsize


def _text_header(path: Path, end_of: Callable[[str], bool]) -> tuple[list[str], int]:
    """Header lines of a text-header format and the byte offset where data starts."""
    with open(path, "rb") as handle:
        head = handle.read(1 << 16)
    lines, offset = [], 0
    for raw in head.splitlines(keepends=True):
        offset += len(raw)
        line = raw.decode("latin-1").strip()
        if end_of(line):
            lines.append(line)
            return lines, offset
        lines.append(line)
    if len(head) < 1 << 16:
        return lines, len(head)  # the header is the whole file (a detached header, or no data)
    return lines, -1  # no end found in the first 64 KiB: leave it to SimpleITK


def _require(data_file: Path, header: Path) -> None:
    if not data_file.is_file():
        raise DataError(f"{header}: its header names data file {data_file.name}, which does not exist in "
                        f"{data_file.parent}; keep the header and its data file together")


def _data_stream(path: Path, data_file: Path, offset: int, encoding: str, expected: int) -> int | None:
    """Payload bytes found (up to ``expected``) for raw/gzip/bzip2/zlib data at ``offset``."""
    with open(data_file, "rb") as handle:
        if encoding == "raw":
            return max(0, data_file.stat().st_size - offset)
        handle.seek(offset)
        if encoding == "gzip":
            stream = _chunks(gzip.GzipFile(fileobj=handle), expected)
        elif encoding == "bzip2":
            stream = _chunks(bz2.BZ2File(handle), expected)
        elif encoding == "zlib":
            stream = _zlib_chunks(handle, expected)
        else:
            return None
        return _measure(path, stream, expected)[0]


def check_nrrd(path: Path) -> None:
    """Refuse a .nrrd / .nhdr whose raw, gzip or bzip2 data is shorter than its header says."""
    lines, end = _text_header(path, lambda line: line == "")
    if end < 0 or not lines or not lines[0].startswith("NRRD"):
        return
    fields = {}
    for line in lines[1:]:
        if ":" in line and not line.startswith("#"):
            key, _, value = line.partition(":")
            fields[key.strip().lower()] = value.lstrip("=").strip()
    encoding = {"raw": "raw", "gzip": "gzip", "gz": "gzip", "bzip2": "bzip2", "bz2": "bzip2"}.get(
        fields.get("encoding", "").lower())
    name = fields.get("data file", fields.get("datafile"))
    skip = int(fields.get("byte skip", "0") or 0) if fields.get("byte skip", "0").lstrip("-").isdigit() else -1
    if encoding is None or skip < 0 or fields.get("line skip", "0") not in ("0", ""):
        return  # ASCII/hex data, data at the end, or line skips: SimpleITK checks those
    if name is not None and (" " in name or name.upper() == "LIST"):
        return  # multi-file data
    data_file = path.parent / name if name else path
    offset = (skip if name else end + skip) if encoding == "raw" else (0 if name else end)
    _require(data_file, path)
    expected = _sitk_expected_bytes(path)
    if expected is None:
        return
    found = _data_stream(path, data_file, offset, encoding, expected)
    if found is not None and found < expected:
        raise _incomplete(data_file, expected, found,
                          "the (decompressed) data holds" if encoding != "raw" else "the file holds", path)


def check_metaimage(path: Path) -> None:
    """Refuse a .mha / .mhd whose raw or zlib data is shorter than its header says."""
    lines, end = _text_header(path, lambda line: line.replace(" ", "").lower().startswith("elementdatafile="))
    if end < 0:
        return
    fields = {}
    for line in lines:
        key, _, value = line.partition("=")
        fields[key.strip().lower()] = value.strip()
    name = fields.get("elementdatafile", "")
    if name.upper() == "LIST" or "%" in name or " " in name:
        return  # multi-file data
    compressed = fields.get("compresseddata", "false").lower() == "true"
    header_size = fields.get("headersize", "0")
    if not header_size.lstrip("-").isdigit() or int(header_size) < 0:
        return  # -1: data at the end of the file
    local = name.upper() == "LOCAL"
    data_file = path if local else path.parent / name
    offset = end if local else int(header_size)
    _require(data_file, path)
    expected = _sitk_expected_bytes(path)
    if expected is None:
        return
    found = _data_stream(path, data_file, offset, "zlib" if compressed else "raw", expected)
    if found is not None and found < expected:
        raise _incomplete(data_file, expected, found,
                          "the (decompressed) data holds" if compressed else "the file holds", path)


def check_payload(path: Path) -> int:
    """Check a NIfTI / NRRD / MetaImage file's data length; returns NIfTI's NaN/inf count."""
    name = path.name.lower()
    if name.endswith((".nii", ".nii.gz")):
        return check_nifti(path)
    if name.endswith((".nrrd", ".nhdr")):
        check_nrrd(path)
    elif name.endswith((".mha", ".mhd")):
        check_metaimage(path)
    return 0
