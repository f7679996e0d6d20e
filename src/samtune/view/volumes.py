"""Cases opened by the page: pixels, labels and the mask being corrected, served slice by slice.

Every case is held as volumes in array order ``[z, y, x]`` (a 2D image is ``[1, y, x]``),
so one slicing rule serves all views: axis 0 axial ``[y, x]``, axis 1 coronal ``[z, x]``,
axis 2 sagittal ``[z, y]``. Labels are compacted to ranks 1..K of their sorted non-zero
values (a 0/255 PNG mask and a 1/2 prediction compare class by class); ``values`` keeps
the stored values for the legend. The working mask (what Accept writes) starts as the
prediction, else the ground truth, else empty. A few cases stay open (least recently used
closed first; a case with unsaved edits is never closed), so moving between slices reads
no file.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from samtune.data.geometry import LoadedImage
from samtune.data.slicing import take_slice
from samtune.data.readers import read_image
from samtune.errors import DataError
from samtune.view.catalog import Catalog, ViewCase

OPEN_CASES = 3
LAYERS = ("image", "gt", "pred", "work")


@dataclass
class OpenCase:
    """One case in memory. Arrays are [z, y, x]; spacing is in array order (mm, 2D: z = 1)."""

    case: ViewCase
    image: LoadedImage  # as read (channels kept): what the model is prompted with
    display: np.ndarray  # float32 [z, y, x]: one grey value per pixel
    gt: np.ndarray | None  # uint8 ranks
    pred: np.ndarray | None
    work: np.ndarray
    values: list[int]  # stored label value of each rank 1..K (ground truth's, else prediction's)
    spacing: tuple[float, float, float]
    is_2d: bool
    lock: threading.Lock
    dirty: bool = False  # edited since opened or last accepted: never closed to free memory

    def info(self) -> dict[str, object]:
        """What the page needs to lay out the viewer (JSON)."""
        finite = self.display[np.isfinite(self.display)]
        sample = finite[:: max(1, finite.size // 200_000)] if finite.size else np.zeros(1, np.float32)
        low, high = (float(v) for v in np.percentile(sample, [0.5, 99.5]))
        return {
            "name": self.case.name, "shape": list(self.display.shape), "spacing": list(self.spacing),
            "is_2d": self.is_2d, "has_gt": self.gt is not None, "has_pred": self.pred is not None,
            "classes": len(self.values), "values": self.values,
            "intensity": {"min": float(sample.min()), "max": float(sample.max()), "low": low, "high": high},
            "metrics": self.case.metrics, "per_class": self.case.per_class,
        }

    def layer(self, name: str) -> np.ndarray | None:
        return {"image": self.display, "gt": self.gt, "pred": self.pred, "work": self.work}[name]

    def slice_of(self, layer: str, axis: int, index: int) -> np.ndarray:
        """The 2D slice [rows, cols] of a layer; IndexError outside the volume."""
        array = self.layer(layer)
        if array is None:
            raise LookupError(f"case {self.case.name} has no {layer} layer")
        if axis not in (0, 1, 2) or not 0 <= index < array.shape[axis]:
            raise IndexError(f"slice {index} on axis {axis} is outside {list(array.shape)}")
        return np.ascontiguousarray(take_slice(array, axis, index))

    def set_work_slice(self, axis: int, index: int, values: np.ndarray) -> None:
        """Replace one slice of the working mask (values must be ranks 0..K)."""
        target = np.moveaxis(self.work, axis, 0)
        if values.shape != target.shape[1:]:
            raise ValueError(f"slice shape {list(values.shape)} != {list(target.shape[1:])}")
        target[index] = values
        self.dirty = True

    def prompt_image(self, axis: int, index: int) -> np.ndarray:
        """The slice as the model sees it: stored values, channels kept ([H, W] or [H, W, C])."""
        array = self.image.array if not self.is_2d else self.image.array[None]
        return np.ascontiguousarray(take_slice(array, axis, index))

    def prompt_volume(self) -> LoadedImage:
        """The image as a 3D `LoadedImage` (a 2D image becomes one slice)."""
        if not self.is_2d:
            return self.image
        return LoadedImage(self.image.array[None], self.image.geometry, self.image.path)


def compact_labels(array: np.ndarray, path) -> tuple[np.ndarray, list[int]]:
    """(ranks uint8, stored values) of an integer label array; refuses what is not a label map."""
    if array.ndim == 3 and array.shape[-1] in (3, 4) and array.dtype == np.uint8:
        array = array[..., 0]  # an RGB(A) mask PNG: its first channel holds the labels
    if not np.issubdtype(array.dtype, np.integer):
        if not np.all(np.mod(array, 1) == 0):
            raise DataError(f"{path} holds non-integer values; a label file must hold integer classes")
    values = [int(v) for v in np.unique(array) if v != 0]
    if len(values) > 254:
        raise DataError(f"{path} holds {len(values)} distinct values; is it an image rather than a label file?")
    lookup = {v: i + 1 for i, v in enumerate(values)}
    ranks = np.zeros(array.shape, np.uint8)
    for value, rank in lookup.items():
        ranks[array == value] = rank
    return ranks, values


def _as_volume(array: np.ndarray, is_2d: bool) -> np.ndarray:
    return array[None] if is_2d else array


def open_case(case: ViewCase) -> OpenCase:
    """Read a case's files and check that its labels lie on its image's grid."""
    image = read_image(case.image)
    is_2d = image.spatial_ndim == 2
    pixels = image.array.astype(np.float32)
    if image.channels > 1:  # grey display: mean of colour channels, first channel of a multi-channel volume
        pixels = pixels.mean(axis=-1) if is_2d else pixels[..., 0]
    display = np.ascontiguousarray(_as_volume(pixels, is_2d))
    labels: dict[str, np.ndarray | None] = {"gt": None, "pred": None}
    found: dict[str, list[int]] = {"gt": [], "pred": []}
    for role in ("pred", "gt"):
        path = getattr(case, role)
        if path is None:
            continue
        loaded = read_image(path, role="mask")
        ranks, found[role] = compact_labels(loaded.array, path)
        ranks = _as_volume(ranks, is_2d)
        if ranks.shape != display.shape:
            raise DataError(f"{path} has shape {list(ranks.shape)} but its image {case.image} has "
                            f"{list(display.shape)}; labels must lie on the image's grid")
        labels[role] = ranks
    # The ground truth's stored values name the classes; a prediction with more classes adds its own.
    values = found["gt"] + found["pred"][len(found["gt"]):]
    start = labels["pred"] if labels["pred"] is not None else labels["gt"]
    work = start.copy() if start is not None else np.zeros(display.shape, np.uint8)
    spacing = image.geometry.array_spacing
    spacing3 = (1.0, *spacing) if is_2d else tuple(spacing)
    return OpenCase(case, image, display, labels["gt"], labels["pred"], work, values or [1],
                    (float(spacing3[0]), float(spacing3[1]), float(spacing3[2])), is_2d, threading.Lock())


class CaseStore:
    """Open cases by name (least recently used unedited ones closed beyond `OPEN_CASES`); thread-safe."""

    def __init__(self, catalog: Catalog, keep: int = OPEN_CASES) -> None:
        self.catalog = catalog
        self.keep = keep
        self._open: OrderedDict[str, OpenCase] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, name: str) -> OpenCase:
        """The open case (read on first use); KeyError for a name not in the catalog."""
        case = self.catalog.case(name)
        with self._lock:
            if name in self._open:
                self._open.move_to_end(name)
                return self._open[name]
        opened = open_case(case)  # read outside the lock: other cases stay served meanwhile
        with self._lock:
            current = self._open.setdefault(name, opened)
            self._open.move_to_end(name)
            clean = [n for n, c in self._open.items() if not c.dirty and n != name]
            for closing in clean[: max(0, len(self._open) - self.keep)]:
                del self._open[closing]
            return current
