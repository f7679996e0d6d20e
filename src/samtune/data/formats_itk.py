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


def read_itk(path: Path) -> LoadedImage:
    """Read one NIfTI / NRRD / MHA / MHD (or any SimpleITK-readable) file."""
    path = Path(path)
    try:
        image = sitk.ReadImage(str(path))
    except RuntimeError as error:
        raise DataError(
            f"cannot read {path}: {_itk_message(error)}; check the file is complete and not corrupt"
        ) from error
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
