"""2D photo formats (PNG, JPEG, BMP, TIFF) through Pillow, without silent conversions.

Arrays come back as [y, x] (gray) or [y, x, C] (C = 2 gray+alpha, 3 RGB, 4 RGBA) in the
file's own bit depth (uint8, uint16, int32, float32). Multi-page TIFFs become volumes
[z, y, x]. Pillow reduces 16-bit colour PNG/TIFF to 8 bits, so those go through
SimpleITK instead, which keeps all 16 bits. These formats carry no geometry: it is
`Geometry.identity`.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image, UnidentifiedImageError

from samtune.data.geometry import Geometry, LoadedImage
from samtune.errors import DataError

Role = Literal["image", "mask"]

# Pillow modes whose numpy array is the stored data as is.
_DIRECT_MODES = {"L", "LA", "RGB", "RGBA", "I", "F", "I;16", "I;16L", "I;16B", "I;16N"}


def _png_is_deep_colour(path: Path) -> bool:
    """True for a 16-bit RGB / RGBA / gray+alpha PNG (IHDR bit depth 16, colour type 2/4/6)."""
    with open(path, "rb") as handle:
        header = handle.read(26)
    return len(header) == 26 and header[24] == 16 and header[25] in (2, 4, 6)


def _tiff_is_deep_colour(image: Image.Image) -> bool:
    bits = getattr(image, "tag_v2", {}).get(258, (8,))
    bits = bits if isinstance(bits, tuple) else (bits,)
    return len(bits) > 1 and max(bits) > 8


def _frame_array(image: Image.Image, role: Role, path: Path) -> np.ndarray:
    mode = image.mode
    if mode == "1":  # bilevel: True/False -> 1/0
        return np.asarray(image, dtype=np.uint8)
    if mode in ("P", "PA"):
        if role == "mask":  # palette PNGs store label indices; the palette is display only
            return np.asarray(image.convert("P") if mode == "PA" else image)
        return np.asarray(image.convert("RGBA" if "transparency" in image.info else "RGB"))
    if mode in ("CMYK", "YCbCr", "LAB", "HSV", "RGBX", "RGBa", "La"):
        return np.asarray(image.convert("RGB"))
    if mode in _DIRECT_MODES:
        array = np.asarray(image)
        if mode.startswith("I;16"):
            array = array.astype(np.uint16, copy=False)
        return array
    raise DataError(
        f"{path}: unsupported Pillow image mode '{mode}'; convert it to a gray or RGB PNG/TIFF"
    )


# Decompression bombs: a few kB of PNG/TIFF can claim billions of pixels. Pillow warns
# above Image.MAX_IMAGE_PIXELS (89,478,485 by default) and refuses above twice that; samtune
# refuses above one limit, checked from the header before any pixel is decoded.
MAX_PIXELS_VARIABLE = "SAMTUNE_MAX_IMAGE_PIXELS"
DEFAULT_MAX_PIXELS = 89_478_485  # Pillow's default limit (about 9459 x 9459)


def max_image_pixels() -> int:
    """Largest 2D image (pixels over all pages) read: $SAMTUNE_MAX_IMAGE_PIXELS or Pillow's default."""
    text = os.environ.get(MAX_PIXELS_VARIABLE, "").strip()
    if not text:
        return DEFAULT_MAX_PIXELS
    try:
        value = int(float(text))
    except ValueError:
        value = 0
    if value <= 0:
        raise DataError(f"{MAX_PIXELS_VARIABLE}={text!r} is not a positive number of pixels; e.g. 400000000")
    return value


def _open(path: Path) -> Image.Image:
    """Pillow's lazy open (header only) with its bomb check replaced by `_check_size`."""
    saved = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None  # our own limit applies, checked before decoding
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            return Image.open(path)
    finally:
        Image.MAX_IMAGE_PIXELS = saved


def _check_size(image: Image.Image, path: Path) -> None:
    width, height = image.size
    pages = getattr(image, "n_frames", 1)
    pixels, limit = width * height * pages, max_image_pixels()
    if pixels > limit:
        pages_text = f" x {pages} pages" if pages > 1 else ""
        raise DataError(
            f"{path}: {width} x {height}{pages_text} = {pixels:,} pixels is above the limit of {limit:,} "
            f"(a decompression bomb?); if the image is genuine, allow it with {MAX_PIXELS_VARIABLE}={pixels}"
        )


def read_2d(path: Path, role: Role = "image") -> LoadedImage:
    """Read a PNG / JPEG / BMP / TIFF file. ``role='mask'`` keeps palette indices.

    Images above `max_image_pixels` are refused from their header, before decoding.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    try:
        with _open(path) as image:
            _check_size(image, path)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise DataError(f"cannot read image {path}: {error}; check the file is not corrupt") from error
    if suffix == ".png" and _png_is_deep_colour(path):
        from samtune.data.formats_itk import read_itk

        return read_itk(path)
    try:
        with _open(path) as image:
            if suffix in (".tif", ".tiff") and _tiff_is_deep_colour(image):
                from samtune.data.formats_itk import read_itk

                return read_itk(path)
            frames = []
            for index in range(getattr(image, "n_frames", 1)):
                image.seek(index)
                frames.append(_frame_array(image, role, path))
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise DataError(f"cannot read image {path}: {error}; check the file is not corrupt") from error
    if len(frames) == 1:
        return LoadedImage(np.array(frames[0]), Geometry.identity(2), path)
    shapes = {frame.shape for frame in frames}
    if len(shapes) > 1:
        raise DataError(f"{path}: TIFF pages have different shapes {sorted(shapes)}")
    return LoadedImage(np.stack(frames), Geometry.identity(3), path)


def _to_storable(array: np.ndarray, path: Path) -> np.ndarray:
    if array.dtype == np.bool_:
        return array.astype(np.uint8)
    if array.dtype in (np.uint8, np.uint16):
        return array
    if np.issubdtype(array.dtype, np.integer) and array.size:
        low, high = int(array.min()), int(array.max())
        if low >= 0 and high <= 255:
            return array.astype(np.uint8)
        if low >= 0 and high <= 65535 and array.ndim == 2:
            return array.astype(np.uint16)
    if np.issubdtype(array.dtype, np.integer) and not array.size:
        return array.astype(np.uint8)
    raise DataError(
        f"cannot store {array.dtype} values in {path.name} without changing them; "
        "write .nii.gz, .nrrd or .mha instead"
    )


def write_2d(path: Path, array: np.ndarray, geometry: Geometry) -> None:
    """Write [y, x] (uint8/uint16) or [y, x, 3|4] (uint8) to PNG / BMP / TIFF.

    JPEG is refused: its lossy compression would change label values.
    """
    path = Path(path)
    if path.suffix.lower() in (".jpg", ".jpeg"):
        raise DataError(f"{path}: JPEG is lossy and would alter the values; write PNG instead")
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)):
        raise DataError(f"{path}: cannot write an array of shape {array.shape} as a 2D image")
    stored = _to_storable(np.asarray(array), path)
    if stored.ndim == 3 and stored.dtype != np.uint8:
        raise DataError(f"{path}: colour images must be uint8 for {path.suffix}; write .mha instead")
    Image.fromarray(np.ascontiguousarray(stored)).save(path)
