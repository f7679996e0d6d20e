"""Accept: write a corrected mask into the corrections folder and list it for training.

Layout of the corrections folder (``--corrections``, default ``./corrections``)::

    corrections/labels/CASE.nii.gz   (or CASE.png for PNG/JPEG/TIFF images)
    corrections/corrections.csv      header ``image,mask``; one row per accepted case

The mask has the image's grid and geometry (spacing, origin, direction; a 2D photo format
has none) and holds the label values the case's files use (ground truth's, else the
prediction's: a 0/255 mask is written 0/255, prostate zones 254/255 stay 254/255), so the
label spec a recipe uses for the original data reads the corrections as well. Files are
written atomically; accepting a case again replaces its file and its row. Original images and labels are never written: a target that
resolves onto any file the page was opened on is refused. ``corrections.csv`` is a
samtune list file, so ``samtune train --set data.train=corrections/corrections.csv``
trains on the corrections (image paths are absolute, mask paths relative to the list).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np

from samtune.atomic import atomic_path
from samtune.data.readers import format_for, write_image
from samtune.errors import UserError
from samtune.outputs import check_output_folder
from samtune.view.catalog import Catalog, ViewCase
from samtune.view.volumes import OpenCase

LIST_FILE = "corrections.csv"
LABELS_DIR = "labels"


def check_corrections_folder(folder: str | Path, catalog: Catalog) -> Path:
    """Refuse a corrections folder that cannot be written or whose labels/ is an opened label folder."""
    folder = check_output_folder(folder, overwrite=True, flag="--corrections").absolute()
    labels = (folder / LABELS_DIR).resolve()
    originals = {p.parent for c in catalog.cases.values() for p in (c.gt, c.pred) if p is not None}
    if labels in originals:
        raise UserError(f"--corrections {folder} would write into {labels}, which holds the labels being "
                        "reviewed; choose another folder (originals are never overwritten)")
    return folder


def correction_path(folder: Path, case: ViewCase) -> Path:
    """corrections/labels/CASE.nii.gz, or CASE.png when the image is a photo format."""
    keeps_geometry = format_for(case.image).keeps_geometry
    return folder / LABELS_DIR / f"{case.name}{'.nii.gz' if keeps_geometry else '.png'}"


def _read_list(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        return []
    with path.open(newline="", encoding="utf-8") as handle:
        return [row for row in csv.DictReader(handle) if row.get("image")]


def save_correction(folder: Path, opened: OpenCase, catalog: Catalog) -> tuple[Path, Path]:
    """Write the case's working mask and list it; returns (mask file, list file)."""
    target = correction_path(folder, opened.case)
    protected = {p.resolve() for c in catalog.cases.values() for p in c.files()}
    if target.resolve() in protected:
        raise UserError(f"{target} is an original file of this session; choose another --corrections folder")
    with opened.lock:
        work = opened.work.copy()
    # ranks back to the stored label values, so the source's own label spec reads the corrections too
    lookup = np.array([0, *opened.values], dtype=np.uint8 if max(opened.values) <= 255 else np.uint16)
    array = lookup[work[0] if opened.is_2d else work]
    write_image(target, array, opened.image.geometry)
    list_path = folder / LIST_FILE
    mask_text = target.relative_to(folder).as_posix()
    rows = [r for r in _read_list(list_path) if r.get("mask") != mask_text]
    rows.append({"image": str(opened.case.image), "mask": mask_text})
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=["image", "mask"], lineterminator="\n")
    writer.writeheader()
    writer.writerows({"image": r["image"], "mask": r["mask"]} for r in rows)
    with atomic_path(list_path) as tmp:
        tmp.write_text(buffer.getvalue(), encoding="utf-8")
    opened.dirty = False
    return target, list_path
