"""`samtune.data.payload`: complete files of every layout pass; the data length is measured right.

The truncated files themselves are in tests/reliability/test_bad_data.py; here the point
is no false alarm on valid files (compressed, detached, big-endian, NIfTI-2, scaled,
vector pixels, 2D) and the hand-computed byte counts.
"""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from samtune.data.payload import check_metaimage, check_nifti, check_nrrd, check_payload
from samtune.data.readers import read_image
from samtune.errors import DataError

VOLUME = (np.arange(3 * 5 * 7).reshape(3, 5, 7) - 50).astype(np.int16)  # 105 values, 210 bytes


def _itk(path: Path, array: np.ndarray, compress: bool = False, vector: bool = False) -> Path:
    sitk.WriteImage(sitk.GetImageFromArray(array, isVector=vector), str(path), useCompression=compress)
    return path


@pytest.mark.parametrize("name, compress", [
    ("v.nii", False), ("v.nii.gz", True), ("v.nrrd", False), ("v.nrrd", True), ("v.nhdr", False),
    ("v.nhdr", True), ("v.mha", False), ("v.mha", True), ("v.mhd", False), ("v.mhd", True),
])
def test_complete_files_pass_and_read_back(tmp_path, name, compress):
    path = _itk(tmp_path / name, VOLUME, compress)
    assert check_payload(path) == 0
    np.testing.assert_array_equal(read_image(path).array, VOLUME)


@pytest.mark.parametrize("name", ["rgb.mha", "rgb.nrrd", "rgb.nii.gz"])
def test_vector_pixels_count_every_component(tmp_path, name):
    rgb = np.arange(4 * 6 * 3, dtype=np.uint8).reshape(4, 6, 3)
    path = _itk(tmp_path / name, rgb, compress=name.endswith(".gz"), vector=True)
    check_payload(path)
    np.testing.assert_array_equal(read_image(path).array, rgb)
    if name == "rgb.mha":  # 72 bytes promised; one byte short is refused
        data = path.read_bytes()
        path.write_bytes(data[:-1])
        with pytest.raises(DataError, match="promises 72 bytes of pixel data but the file holds 71"):
            check_metaimage(path)


def test_2d_nifti_and_float64(tmp_path):
    path = _itk(tmp_path / "plane.nii.gz", np.linspace(0, 1, 35).reshape(5, 7), compress=True)
    assert check_nifti(path) == 0
    assert read_image(path).array.dtype == np.float64


def _nifti1(order: str, dims: list[int], datatype: int, bitpix: int, payload: bytes, slope: float = 0.0) -> bytes:
    header = bytearray(352)
    struct.pack_into(f"{order}i", header, 0, 348)
    struct.pack_into(f"{order}8h", header, 40, len(dims), *dims, *[1] * (7 - len(dims)))
    struct.pack_into(f"{order}hh", header, 70, datatype, bitpix)
    struct.pack_into(f"{order}8f", header, 76, 1, 1, 1, 1, 1, 1, 1, 1)
    struct.pack_into(f"{order}f", header, 108, 352.0)
    struct.pack_into(f"{order}ff", header, 112, slope, 0.0)
    struct.pack_into(f"{order}h", header, 252, 0)
    header[344:348] = b"n+1\x00"
    return bytes(header) + payload


def test_big_endian_and_scaled_nifti(tmp_path):
    values = np.arange(6 * 4, dtype=">i2")
    path = tmp_path / "be.nii"
    path.write_bytes(_nifti1(">", [4, 6], 4, 16, values.tobytes(), slope=0.5))
    assert check_nifti(path) == 0
    # scl_slope 0.5 makes SimpleITK return floats; the payload check used the stored int16 size
    np.testing.assert_allclose(read_image(path).array, values.reshape(6, 4).astype(float) * 0.5)
    path.write_bytes(_nifti1(">", [4, 6], 4, 16, values.tobytes()[:-2]))
    with pytest.raises(DataError, match="promises 48 bytes of pixel data but the file holds 46"):
        check_nifti(path)


def test_nifti_nan_counted_across_chunk_edges(tmp_path, monkeypatch):
    import samtune.data.payload as payload

    monkeypatch.setattr(payload, "_CHUNK", 7)  # chunks that split float32 values
    values = np.arange(40, dtype="<f4")
    values[[0, 13, 39]] = [np.nan, np.inf, -np.inf]
    path = tmp_path / "f.nii.gz"
    path.write_bytes(gzip.compress(_nifti1("<", [4, 10], 16, 32, values.tobytes())))
    assert check_nifti(path) == 3


def test_nrrd_gzip_payload_short_but_stream_complete(tmp_path):
    path = _itk(tmp_path / "v.nrrd", VOLUME)
    text, _, raw = path.read_bytes().partition(b"\n\n")
    path.write_bytes(text.replace(b"encoding: raw", b"encoding: gzip") + b"\n\n" + gzip.compress(raw[:200]))
    with pytest.raises(DataError, match=r"v.nrrd \(|v.nrrd: truncated: the header promises 210 bytes .* holds 200"):
        check_nrrd(path)
