"""Image readers and writers, registered by file extension.

`read_image(path)` returns a `LoadedImage` (array + `Geometry`, see
`samtune.data.geometry` for the axis convention) for any registered extension, or for a
folder holding one DICOM series. `write_image(path, array, geometry)` writes atomically:
into a temporary folder beside the target, then renamed into place, so a crash never
leaves a half-written file under the final name.

    >>> image = read_image("case_0000.nii.gz")     # array [z, y, x], spacing (x, y, z)
    >>> write_image("pred.nii.gz", labels, image.geometry)
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from samtune.data.formats_2d import Role, read_2d, write_2d
from samtune.data.geometry import Geometry, LoadedImage
from samtune.errors import DataError
from samtune.registry import Registry


@dataclass(frozen=True)
class Format:
    """A file family: its extensions, reader and (optional) writer.

    ``read(path, role)`` returns a `LoadedImage`; ``write(path, array, geometry)`` writes
    one file. ``keeps_geometry`` says whether spacing/origin/direction survive a write.
    """

    name: str
    extensions: tuple[str, ...]
    read: Callable[[Path, Role], LoadedImage]
    write: Callable[[Path, np.ndarray, Geometry], None] | None
    keeps_geometry: bool


FORMATS: Registry[Format] = Registry("image format")
# The same formats by extension (".nii.gz"), for reading and writing by file name.
EXTENSIONS: Registry[Format] = Registry(
    "file type", listing="supported: {names} or a folder holding one DICOM series", unknown="unsupported"
)


def register_format(fmt: Format) -> Format:
    """Add a format; a duplicate name or extension is an error."""
    for ext in fmt.extensions:
        if ext in EXTENSIONS:
            raise ValueError(f"extension '{ext}' is already read by '{EXTENSIONS.get(ext).name}'")
    FORMATS.register(fmt.name, fmt)
    for ext in fmt.extensions:
        EXTENSIONS.register(ext, fmt)
    return fmt


# SimpleITK is imported on first use only: 2D-only work (PNG training, say) never loads it.
def _itk_reader(path: Path, role: Role) -> LoadedImage:
    from samtune.data.formats_itk import read_itk

    return read_itk(path)


def _itk_writer(path: Path, array: np.ndarray, geometry: Geometry) -> None:
    from samtune.data.formats_itk import write_itk

    write_itk(path, array, geometry)


register_format(Format("png", (".png",), read_2d, write_2d, keeps_geometry=False))
register_format(Format("jpeg", (".jpg", ".jpeg"), read_2d, write_2d, keeps_geometry=False))
register_format(Format("bmp", (".bmp",), read_2d, write_2d, keeps_geometry=False))
register_format(Format("tiff", (".tif", ".tiff"), read_2d, write_2d, keeps_geometry=False))
register_format(Format("nifti", (".nii", ".nii.gz"), _itk_reader, _itk_writer, keeps_geometry=True))
register_format(Format("nrrd", (".nrrd", ".nhdr"), _itk_reader, _itk_writer, keeps_geometry=True))
register_format(Format("metaimage", (".mha", ".mhd"), _itk_reader, _itk_writer, keeps_geometry=True))
register_format(Format("dicom", (".dcm",), _itk_reader, None, keeps_geometry=True))


def supported_extensions() -> list[str]:
    """Every registered extension, e.g. ['.bmp', '.dcm', '.jpeg', ...]."""
    return sorted(EXTENSIONS)


def extension_of(path: str | Path) -> str:
    """The registered extension that ``path`` ends with ('.nii.gz' before '.gz'), or its suffix."""
    name = Path(path).name.lower()
    matches = [ext for ext in EXTENSIONS if name.endswith(ext)]
    if matches:
        return max(matches, key=len)
    return Path(name).suffix


def format_for(path: str | Path) -> Format:
    """The registered format for a file name; an unknown extension is an UnknownNameError (a
    DataError) naming the file and the close extensions."""
    return EXTENSIONS.get(extension_of(path) or "(none)", where=str(path))


def is_image_path(path: str | Path) -> bool:
    """True when ``path`` has a registered image extension."""
    return extension_of(path) in EXTENSIONS


def read_image(path: str | Path, role: Role = "image") -> LoadedImage:
    """Read an image file, or a DICOM series folder, with its geometry.

    Args:
        path: file with a registered extension, or a folder of one DICOM series.
        role: "mask" keeps palette-PNG indices as label values; "image" expands palettes
            to colours.

    Returns:
        `LoadedImage` with ``array`` [y, x(, C)] or [z, y, x(, C)] and ``geometry`` in ITK
        (x, y[, z]) order.
    """
    path = Path(path)
    if path.is_dir():
        from samtune.data.formats_dicom import read_dicom_series

        loaded = read_dicom_series(path)
        check_finite(loaded)
        return loaded
    if not path.exists():
        raise DataError(f"file not found: {path}")
    loaded = format_for(path).read(path, role)
    check_finite(loaded)
    return loaded


def check_finite(image: LoadedImage) -> None:
    """NaN / inf pixels raise DataError naming the file, whatever its format."""
    array = image.array
    if np.issubdtype(array.dtype, np.complexfloating) or np.issubdtype(array.dtype, np.floating):
        bad = int(array.size - np.isfinite(array).sum())
        if bad:
            raise DataError(
                f"{image.path}: {bad} NaN or infinite value(s) of {array.size}; replace them with "
                "finite values (e.g. 0 or the background intensity) before using the file"
            )


def write_image(
    path: str | Path,
    array: np.ndarray,
    geometry: Geometry | None = None,
    allow_geometry_loss: bool = False,
) -> Path:
    """Write ``array`` with ``geometry`` to ``path`` atomically; returns the path.

    Args:
        path: target file; the extension picks the format (.nii.gz, .nrrd, .mha, .png, ...).
        array: [y, x(, C)] or [z, y, x(, C)] in array-axis order.
        geometry: spacing/origin/direction in (x, y[, z]) order; identity when None.
        allow_geometry_loss: 2D photo formats cannot store spacing/origin/direction; writing
            a non-identity geometry to them is refused unless this is True.
    """
    path = Path(path)
    array = np.asarray(array)
    fmt = format_for(path)
    if fmt.write is None:
        raise DataError(f"{path}: writing {fmt.name} is not supported; write .nii.gz or .mha")
    if geometry is None:
        geometry = Geometry.identity(3 if array.ndim >= 3 and fmt.keeps_geometry else 2)
    if not fmt.keeps_geometry and not geometry.is_identity and not allow_geometry_loss:
        raise DataError(
            f"{path}: {fmt.name} cannot store spacing {geometry.spacing} or origin/direction; "
            "write .nii.gz, .nrrd or .mha to keep the geometry"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        try:
            fmt.write(staging / path.name, array, geometry)
        except (OSError, ValueError, TypeError) as error:
            raise DataError(f"cannot write {path}: {error}") from error
        # Data files (e.g. MetaImage .raw) before the header that names them.
        written = sorted(staging.iterdir(), key=lambda p: p.name == path.name)
        for item in written:
            os.replace(item, path.parent / item.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return path
