"""Volume formats through SimpleITK: NIfTI, NRRD, MetaImage (MHA/MHD); DICOM series in formats_dicom.

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
from samtune.data.payload import check_payload
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
    # Before SimpleITK: it zero-fills truncated NIfTI and reads NIfTI NaN as 0 (see payload).
    count = check_payload(path)
    if count:
        raise DataError(
            f"{path}: {count} NaN or infinite value(s) stored in the file; fix or replace "
            "them (SimpleITK would silently read them as 0)"
        )
    try:
        image = sitk.ReadImage(str(path))
    except RuntimeError as error:
        raise DataError(
            f"cannot read {path}: {_itk_message(error)}; check the file is complete and not corrupt"
        ) from error
    return _to_loaded(image, path)


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
