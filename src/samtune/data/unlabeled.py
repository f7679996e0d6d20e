"""Unlabelled image slices for self-supervised pretraining.

`list_unlabeled(path)` finds the images of any source samtune reads and ignores masks:

- a list file / nnU-Net folder / ``images/`` + ``masks/`` folder (see `samtune.data.sources`):
  its images (nnU-Net ``imagesTs`` included); the masks are ignored, with a note;
- any other folder: every readable image below it (a folder of ``.dcm`` files is one
  DICOM series);
- a single image or volume file.

`UnlabeledSlices` serves every slice of every volume (2D images count as one slice),
normalised and resized-padded exactly as the fine-tuning data is, plus the in-image
(unpadded) region so that losses can skip the padding.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch

from samtune.data.case_io import check_intensities, read_channels
from samtune.data.intensity import Normalization, intensity_range, scale_intensity
from samtune.data.preprocess import ResizePad
from samtune.data.readers import is_image_path
from samtune.data.slicing import check_axis
from samtune.errors import DataError


def _is_source(path: Path) -> bool:
    if path.is_file():
        return path.suffix.lower() in (".csv", ".tsv", ".txt")
    return (path / "dataset.json").is_file() or ((path / "images").is_dir() and (path / "masks").is_dir())


def _image_files(path: Path) -> tuple[list[tuple[Path, ...]], str]:
    """(image file tuples, note) for one path."""
    if _is_source(path):
        from samtune.data.sources import load_source

        source = load_source(path)
        cases = source.cases + source.test_cases
        with_masks = sum(case.mask is not None for case in cases)
        note = f"{path}: {with_masks} mask(s) ignored (pretraining uses images only)" if with_masks else ""
        return [case.images for case in cases], note
    if path.is_file():
        if not is_image_path(path):
            raise DataError(f"{path} is not an image this tool reads (nor a .csv/.tsv/.txt list)")
        return [(path,)], ""
    if not path.is_dir():
        raise DataError(f"pretraining data not found: {path}")
    found: list[tuple[Path, ...]] = []
    series_dirs: set[Path] = set()
    for file in sorted(path.rglob("*")):
        if not file.is_file() or not is_image_path(file):
            continue
        if file.name.lower().endswith(".dcm"):
            series_dirs.add(file.parent)
        else:
            found.append((file,))
    found.extend((folder,) for folder in sorted(series_dirs))
    return found, ""


def list_unlabeled(paths: list[str | Path]) -> tuple[list[tuple[Path, ...]], list[str]]:
    """Image file tuples of every path, and notes to show (masks ignored)."""
    images: list[tuple[Path, ...]] = []
    notes: list[str] = []
    for raw in paths:
        found, note = _image_files(Path(raw))
        if not found:
            raise DataError(f"no images found in {raw}; give a folder of images/volumes, a list file or an nnU-Net folder")
        images.extend(found)
        if note:
            notes.append(note)
    return images, notes


class UnlabeledSlices:
    """Every slice of a set of images/volumes: item i -> dict(image [3,S,S], valid [S,S] bool).

    Volumes are read on first use (the `cache_cases` most recent stay in memory) and
    scaled with one intensity range per volume, as `SliceDataset` does; 2D images are one
    slice. Axis 0 of a [z, y, x] volume (axial for NIfTI) is the default.
    """

    def __init__(self, images: list[tuple[Path, ...]], image_size: int, normalization: Normalization, axis: int = 0,
                 percentiles: tuple[float, float] | None = None, cache_cases: int = 4):
        self.images = images
        self.image_size = int(image_size)
        self.normalization = normalization
        self.axis = axis
        self.percentiles = percentiles
        self.cache_cases = cache_cases
        self._cache: OrderedDict[int, tuple[np.ndarray, tuple[float, float], int | None]] = OrderedDict()
        counts = [self._count(i) for i in range(len(images))]
        self.offsets = np.cumsum([0] + counts)

    def _count(self, case: int) -> int:
        image, _, axis = self._load(case)
        return 1 if axis is None else int(image.shape[axis])

    def _load(self, case: int) -> tuple[np.ndarray, tuple[float, float], int | None]:
        if case in self._cache:
            self._cache.move_to_end(case)
            return self._cache[case]
        loaded = read_channels_of(self.images[case])
        spatial = loaded.geometry.dim
        array = loaded.array if loaded.array.ndim > spatial else loaded.array[..., None]
        if array.shape[-1] in (2, 4):  # gray+alpha / RGBA photos: drop alpha
            array = array[..., : array.shape[-1] - 1]
        if array.shape[-1] not in (1, 3):
            array = array[..., :1]
        value_range = intensity_range(array, percentiles=self.percentiles, keep_uint8=self.normalization == "imagenet")
        entry = (array, value_range, check_axis(self.axis, spatial))
        self._cache[case] = entry
        while len(self._cache) > max(self.cache_cases, 1):
            self._cache.popitem(last=False)
        return entry

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def locate(self, index: int) -> tuple[int, int]:
        """(image number, slice number) of item `index`."""
        case = int(np.searchsorted(self.offsets, index, side="right") - 1)
        return case, index - int(self.offsets[case])

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < len(self):
            raise IndexError(index)
        case, number = self.locate(index)
        array, value_range, axis = self._load(case)
        plane = array if axis is None else np.take(array, number, axis=axis)
        scaled = scale_intensity(plane if plane.shape[-1] == 3 else plane[..., 0], self.normalization,
                                 value_range=value_range)
        transform = ResizePad(tuple(scaled.shape[:2]), self.image_size)
        image = transform.scaled_image(scaled, self.normalization)
        rows, cols = transform.resized_size
        valid = torch.zeros(self.image_size, self.image_size, dtype=torch.bool)
        valid[:rows, :cols] = True
        return {"image": image, "valid": valid}


def read_channels_of(files: tuple[Path, ...]):
    """The image of one entry (channels stacked), NaN/inf refused naming the file."""
    from samtune.data.sources import Case

    loaded = read_channels(Case(case_id=files[0].name, images=files, mask=None, group=files[0].name))
    check_intensities(loaded)
    return loaded
