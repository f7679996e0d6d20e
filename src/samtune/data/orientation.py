"""Show slices of a volume in the radiological convention, from its direction cosines.

Volumes are stored in any orientation (NIfTI files are often RAS, DICOM LPS), so a slice
shown as stored can be upside down or mirrored. For pictures only (never for the data a
model sees), `radiological_slice` turns a 2D slice so that, in ITK's LPS physical frame
(+x patient left, +y posterior, +z superior):

- axial slices: anterior up, the patient's right on the viewer's left;
- coronal slices: superior up, the patient's right on the viewer's left;
- sagittal slices: superior up, anterior on the viewer's left.

2D photo formats carry no direction (identity geometry) and are shown as stored.
"""

from __future__ import annotations

import numpy as np

from samtune.data.geometry import Geometry

# plane (by the physical axis the slice normal points along) -> (screen-down, screen-right)
# as (physical axis, sign) in LPS.
_TARGETS = {
    2: ("axial", (1, +1), (0, +1)),  # down = posterior, right = patient's left
    1: ("coronal", (2, -1), (0, +1)),  # down = inferior, right = patient's left
    0: ("sagittal", (2, -1), (1, +1)),  # down = inferior, right = posterior
}
_WORDS = {
    "axial": "anterior up, patient's right on the viewer's left",
    "coronal": "superior up, patient's right on the viewer's left",
    "sagittal": "superior up, anterior on the viewer's left",
}


def _physical(geometry: Geometry, array_axis: int) -> tuple[int, int]:
    """(dominant LPS axis, sign) of a 3D array axis (array order z, y, x)."""
    matrix = np.asarray(geometry.direction, dtype=float).reshape(3, 3)
    column = matrix[:, 2 - array_axis]  # ITK index axis 2 - a is array axis a
    dominant = int(np.argmax(np.abs(column)))
    return dominant, 1 if column[dominant] > 0 else -1


def radiological_slice(slice_2d: np.ndarray, geometry: Geometry | None, axis: int) -> tuple[np.ndarray, str]:
    """The slice (any trailing channel axis kept) turned for display, and a one-line note.

    ``axis``: the array axis of the 3D volume the slice was taken along. Returns the slice
    unchanged, with an empty note, for a missing or non-3D geometry.
    """
    if geometry is None or len(geometry.direction) != 9:
        return slice_2d, ""
    normal, _ = _physical(geometry, axis)
    plane, (down_axis, down_sign), (right_axis, right_sign) = _TARGETS[normal]
    row_axis, col_axis = (a for a in range(3) if a != axis)
    (row_phys, row_sign), (col_phys, col_sign) = _physical(geometry, row_axis), _physical(geometry, col_axis)
    view = slice_2d
    if row_phys == right_axis and col_phys == down_axis:  # the slice is transposed
        view = np.swapaxes(view, 0, 1)
        (row_phys, row_sign), (col_phys, col_sign) = (col_phys, col_sign), (row_phys, row_sign)
    if row_phys == down_axis and row_sign != down_sign:
        view = view[::-1]
    if col_phys == right_axis and col_sign != right_sign:
        view = view[:, ::-1]
    return np.ascontiguousarray(view), f"radiological view ({plane}): {_WORDS[plane]}"
