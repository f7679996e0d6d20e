"""Volume formats through SimpleITK: NIfTI, NRRD, MetaImage (MHA/MHD) and DICOM series.

Arrays come back in SimpleITK's numpy order, [z, y, x] (or [y, x] for 2D files), with a
trailing channel axis for vector / RGB pixels, in the file's own dtype (DICOM rescale
slope/intercept are applied by GDCM). Geometry keeps SimpleITK's (x, y, z) order. Images
with more than 3 spatial axes are refused: samtune handles 2D images and 3D volumes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import SimpleITK as sitk

from samtune.data.geometry import Geometry, LoadedImage
from samtune.errors import DataError


def _itk_message(error: Exception) -> str:
    """The informative last line of an ITK exception (they span many lines)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[-1] if lines else type(error).__name__


def _to_loaded(image: sitk.Image, path: Path) -> LoadedImage:
    dim = image.GetDimension()
    if dim > 3:
        size = "x".join(str(v) for v in image.GetSize())
        raise DataError(
            f"{path} is a {dim}D image (size {size}, x-first); samtune reads 2D images and 3D "
            "volumes: split it into 3D volumes (e.g. one file per time point or channel)"
        )
    array = sitk.GetArrayFromImage(image)
    return LoadedImage(array, Geometry.from_sitk(image), path)


_FLOAT_PIXELS = {sitk.sitkFloat32, sitk.sitkFloat64, sitk.sitkVectorFloat32, sitk.sitkVectorFloat64}
_NIFTI_FLOAT_TYPES = {16: np.float32, 64: np.float64}  # NIfTI datatype codes


def nifti_nonfinite_count(path: Path) -> int:
    """NaN/inf values stored in a float NIfTI file, counted from its raw bytes.

    ITK 5's NIfTI reader replaces every NaN/inf with 0 without a word (fixed in ITK 6,
    InsightSoftwareConsortium/ITK#6683); this lets us refuse such files instead.
    """
    import gzip

    opener = gzip.open if path.name.lower().endswith(".gz") else open
    with opener(path, "rb") as handle:
        data = handle.read()
    for order in ("<", ">"):
        size = int(np.frombuffer(data[:4], dtype=f"{order}i4")[0])
        if size == 348:  # NIfTI-1
            datatype = int(np.frombuffer(data[70:72], dtype=f"{order}i2")[0])
            offset = int(np.frombuffer(data[108:112], dtype=f"{order}f4")[0])
            break
        if size == 540:  # NIfTI-2
            datatype = int(np.frombuffer(data[12:14], dtype=f"{order}i2")[0])
            offset = int(np.frombuffer(data[168:176], dtype=f"{order}i8")[0])
            break
    else:
        return 0
    if datatype not in _NIFTI_FLOAT_TYPES:
        return 0
    dtype = np.dtype(_NIFTI_FLOAT_TYPES[datatype]).newbyteorder(order)
    usable = (len(data) - offset) // dtype.itemsize * dtype.itemsize
    values = np.frombuffer(data[offset: offset + usable], dtype=dtype)
    return int((~np.isfinite(values)).sum())


def read_itk(path: Path) -> LoadedImage:
    """Read one NIfTI / NRRD / MHA / MHD (or any SimpleITK-readable) file."""
    path = Path(path)
    try:
        image = sitk.ReadImage(str(path))
    except RuntimeError as error:
        raise DataError(
            f"cannot read {path}: {_itk_message(error)}; check the file is complete and not corrupt"
        ) from error
    name = path.name.lower()
    if image.GetPixelID() in _FLOAT_PIXELS and (name.endswith(".nii") or name.endswith(".nii.gz")):
        count = nifti_nonfinite_count(path)
        if count:
            raise DataError(
                f"{path}: {count} NaN or infinite value(s) stored in the file; fix or replace "
                "them (SimpleITK would silently read them as 0)"
            )
    return _to_loaded(image, path)


def dicom_series_ids(folder: Path) -> list[str]:
    """SeriesInstanceUIDs of the DICOM series directly inside ``folder``."""
    return list(sitk.ImageSeriesReader.GetGDCMSeriesIDs(str(folder)) or [])


def read_dicom_series(folder: Path, series_id: str | None = None) -> LoadedImage:
    """Read one DICOM series from a folder into a volume [z, y, x] sorted by position.

    A folder holding several series needs ``series_id``; the error lists the choices.
    """
    folder = Path(folder)
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
    reader = sitk.ImageSeriesReader()
    names = reader.GetGDCMSeriesFileNames(str(folder), series_id)
    reader.SetFileNames(names)
    try:
        image = reader.Execute()
    except RuntimeError as error:
        raise DataError(f"cannot read DICOM series in {folder}: {_itk_message(error)}") from error
    return _to_loaded(image, folder)


def write_itk(path: Path, array: np.ndarray, geometry: Geometry) -> None:
    """Write [y, x], [z, y, x] (optionally with a trailing channel axis) with its geometry."""
    array = np.asarray(array)
    if array.dtype == np.bool_:
        array = array.astype(np.uint8)
    dim = geometry.dim
    if array.ndim not in (dim, dim + 1):
        raise DataError(
            f"{path}: array of shape {array.shape} does not fit a {dim}D geometry"
        )
    image = sitk.GetImageFromArray(np.ascontiguousarray(array), isVector=array.ndim == dim + 1)
    geometry.apply_to_sitk(image)
    try:
        sitk.WriteImage(image, str(path), useCompression=True)
    except RuntimeError as error:
        raise DataError(f"cannot write {path}: {_itk_message(error)}") from error
