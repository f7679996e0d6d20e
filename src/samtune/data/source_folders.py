"""A folder holding ``images/`` and ``masks/``, matched by file name.

``images/BIDMC05_32.png`` pairs with ``masks/BIDMC05_32.png`` (or ``.nii.gz``, any
registered extension): files are matched on their name without extension. Sub-folders
are searched too; images in different sub-folders (``images/patient5/...``) are grouped by
sub-folder for splits. An image without a mask, a mask without an image, and two files
with the same name are reported as problems, never skipped silently. DICOM series need a
list file (one series folder per row).
"""

from __future__ import annotations

from pathlib import Path

from samtune.data.readers import extension_of, is_image_path
from samtune.data.cases import Case, Problem, Source, group_by_parent
from samtune.errors import DataError


def _by_name(folder: Path, problems: list[Problem]) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for item in sorted(folder.rglob("*")):
        if not item.is_file() or item.name.startswith(".") or not is_image_path(item):
            continue
        name = item.name[: -len(extension_of(item))]
        if name in found:
            problems.append(Problem(
                str(item), f"has the same name as {found[name]}; rename one so images and masks pair up"
            ))
            continue
        found[name] = item
    return found


def load_folders(folder: Path) -> Source:
    """Cases of ``folder/images`` + ``folder/masks`` paired by file name."""
    problems: list[Problem] = []
    images = _by_name(folder / "images", problems)
    masks = _by_name(folder / "masks", problems)
    if not images:
        raise DataError(f"{folder / 'images'} holds no image files")
    for name in sorted(set(masks) - set(images)):
        problems.append(Problem(str(masks[name]), "mask without an image of the same name in images/"))
    paired = [name for name in images if name in masks]
    for name in images:
        if name not in masks:
            problems.append(Problem(str(images[name]), "image without a mask of the same name in masks/"))
    if not paired:
        raise DataError(f"no image in {folder / 'images'} has a mask of the same name in {folder / 'masks'}")
    groups = group_by_parent([images[n] for n in paired], paired, folder / "images")
    cases = [
        Case(name, (images[name],), masks[name], group, str(images[name].relative_to(folder)))
        for name, group in zip(paired, groups)
    ]
    return Source("folders", folder, folder, cases, problems=problems)
