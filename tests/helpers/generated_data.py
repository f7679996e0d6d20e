"""Small generated data shared by tests: PNG datasets with a disc as the object, and
DICOM series written slice by slice."""

import locale
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from PIL import Image


def write_disc_dataset(folder: Path, count: int, seed: int, size: int = 64) -> Path:
    """images/ + masks/ folder pair: noisy images with one disc (mask value 255) each."""
    rng = np.random.default_rng(seed)
    (folder / "images").mkdir(parents=True)
    (folder / "masks").mkdir(parents=True)
    yy, xx = np.mgrid[:size, :size]
    for i in range(count):
        cy, cx = rng.integers(size // 4, 3 * size // 4, size=2)
        radius = rng.integers(size // 8, size // 4)
        disc = (yy - cy) ** 2 + (xx - cx) ** 2 <= radius**2
        image = rng.normal(60, 15, (size, size)) + 120 * disc
        Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).save(folder / "images" / f"case{i:02d}.png")
        Image.fromarray(disc.astype(np.uint8) * 255).save(folder / "masks" / f"case{i:02d}.png")
    return folder


def write_dicom_series(
    folder: Path,
    volume: np.ndarray,
    spacing: tuple[float, float, float] = (0.5, 0.75, 2.0),
    origin: tuple[float, float, float] = (-10.0, 20.0, 30.0),
    series_uid: str = "1.2.826.0.1.3680043.2.1125.1.42",
    prefix: str = "slice",
) -> Path:
    """Write an int16 volume [z, y, x] as one axial DICOM series (one file per slice).

    ``spacing``/``origin`` are in (x, y, z) order, millimetres; slices are written in
    reverse order on disk so that the reader must sort them by position.
    """
    folder.mkdir(parents=True, exist_ok=True)
    image = sitk.GetImageFromArray(volume.astype(np.int16))
    image.SetSpacing(spacing)
    image.SetOrigin(origin)
    # GDCM's writer switches the process locale to "C" and leaves it so: Python's default
    # text encoding would become ASCII for every later test. Restore the locale after.
    saved = locale.setlocale(locale.LC_ALL)
    try:
        _write_slices(folder, image, volume.shape[0], spacing, series_uid, prefix)
    finally:
        locale.setlocale(locale.LC_ALL, saved)
    return folder


def _write_slices(folder: Path, image, count: int, spacing, series_uid: str, prefix: str) -> None:
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    stamp = time.strftime("%Y%m%d")
    for index in reversed(range(count)):
        slice_image = image[:, :, index]
        position = image.TransformIndexToPhysicalPoint((0, 0, index))
        tags = {
            "0008|0060": "MR",
            "0008|0020": stamp,
            "0020|000d": series_uid + ".0",
            "0020|000e": series_uid,
            "0020|0037": "1\\0\\0\\0\\1\\0",
            "0020|0032": "\\".join(f"{v:.6f}" for v in position),
            "0020|0013": str(index + 1),
            "0018|0050": f"{spacing[2]:.6f}",
            "0028|0030": f"{spacing[1]:.6f}\\{spacing[0]:.6f}",
        }
        for key, value in tags.items():
            slice_image.SetMetaData(key, value)
        writer.SetFileName(str(folder / f"{prefix}_{index:03d}.dcm"))
        writer.Execute(slice_image)
