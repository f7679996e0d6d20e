"""Write any source samtune reads as an nnU-Net v2 raw dataset (``DatasetNNN_NAME``).

Layout (nnU-Net v2's dataset format):

    RAW/Dataset004_Prostate/
        dataset.json            channel_names, labels (background 0, classes 1..K),
                                numTraining, file_ending ".nii.gz"
        imagesTr/CASE_0000.nii.gz   one file per channel (_0000, _0001, ...)
        labelsTr/CASE.nii.gz        class ids 0..K (the label map applied), uint8

Every file is NIfTI written with SimpleITK and carries the source's geometry (spacing,
origin, direction); a 2D image stays a 2D NIfTI, which nnU-Net reads as one slice.
The dataset is written into a hidden folder beside its target and renamed into place
when complete, so a failure leaves nothing behind. An id already used in RAW by another
dataset, or by a folder of that name with different content, is refused.
"""

from __future__ import annotations

import filecmp
import json
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from samtune.data.case_io import read_case
from samtune.data.labels import LabelMap, parse_label_spec
from samtune.data.sources import load_source
from samtune.data.validate import check_source
from samtune.errors import UserError

FILE_ENDING = ".nii.gz"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-]*$")


@dataclass
class ExportResult:
    folder: Path
    cases: int
    channels: int
    labels: dict[str, int]
    unchanged: bool = False  # the same export was already there


def dataset_folder_name(dataset_id: int, name: str) -> str:
    return f"Dataset{dataset_id:03d}_{name}"


def check_dataset_name(dataset_id: int, name: str) -> None:
    if not 1 <= dataset_id <= 999:
        raise UserError(f"--id {dataset_id}: nnU-Net dataset ids are 1..999")
    if not _NAME.match(name):
        raise UserError(f"--name '{name}': use letters, digits, '_' and '-' only (it becomes a folder name)")


def _used_by_other(raw: Path, dataset_id: int, folder_name: str) -> list[str]:
    prefix = f"Dataset{dataset_id:03d}_"
    return sorted(p.name for p in raw.glob(prefix + "*") if p.name != folder_name) if raw.is_dir() else []


def write_nifti(array: np.ndarray, geometry, path: Path) -> None:
    """One array as a compressed NIfTI with the case's geometry (spacing, origin, direction)."""
    import SimpleITK as sitk

    image = sitk.GetImageFromArray(np.ascontiguousarray(array))
    geometry.apply_to_sitk(image)
    sitk.WriteImage(image, str(path), useCompression=True)


def _same_tree(a: Path, b: Path) -> bool:
    files_a = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    files_b = sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    if files_a != files_b:
        return False
    # gzip headers hold no time stamp when SimpleITK writes them, so equal pixels give equal bytes
    return all(filecmp.cmp(a / f, b / f, shallow=False) for f in files_a)


def export_nnunet(
    source: str | Path,
    dataset_id: int,
    name: str,
    raw: str | Path,
    labels: str | None = None,
    channel_names: list[str] | None = None,
    root: str | Path | None = None,
) -> ExportResult:
    """Export the labelled cases of `source` as ``RAW/DatasetNNN_NAME`` (see the module docstring).

    labels: a label spec ('binary', 'central=254,peripheral=255'); default: the source's
        declared labels, else binary.
    channel_names: one name per image channel (nnU-Net normalises "CT" with CT
        statistics, anything else per image with z-scores); default "image" / "channel_k".
    """
    check_dataset_name(dataset_id, name)
    raw = Path(raw)
    folder_name = dataset_folder_name(dataset_id, name)
    others = _used_by_other(raw, dataset_id, folder_name)
    if others:
        raise UserError(f"--id {dataset_id} is already used by {raw / others[0]}; choose another --id")
    if raw.exists() and not raw.is_dir():
        raise UserError(f"--out {raw} is a file; give the nnUNet_raw folder")
    loaded = load_source(source, root=root)
    label_map = parse_label_spec(labels) if labels else (loaded.labels or LabelMap.binary())
    cases = [c for c in loaded.cases if c.mask is not None]
    if not cases:
        raise UserError(f"{source} holds no labelled case: nnU-Net's imagesTr needs a label file per case")
    check_source(loaded, label_map, 0, None).raise_if_fatal()
    raw.mkdir(parents=True, exist_ok=True)
    target = raw / folder_name
    work = Path(tempfile.mkdtemp(prefix=f".{folder_name}-", dir=raw))
    try:
        (work / "imagesTr").mkdir()
        (work / "labelsTr").mkdir()
        channels = None
        for case in cases:
            data = read_case(case)
            image = data.image if data.image.ndim > data.spatial_ndim else data.image[..., None]
            if channels is None:
                channels = image.shape[-1]
                names = channel_names or (["image"] if channels == 1 else [f"channel_{k}" for k in range(channels)])
                if len(names) != channels:
                    raise UserError(f"--channel-names gives {len(names)} name(s) but {case.describe()} has "
                                    f"{channels} channel(s)")
            elif image.shape[-1] != channels:
                raise UserError(f"{case.describe()} has {image.shape[-1]} channel(s), the first case {channels}; "
                                "nnU-Net needs the same channels for every case")
            assert data.mask is not None  # read_case(with_mask=True) raised for a case without one
            classes = label_map.apply(data.mask, where=str(case.mask)).astype(np.uint8)
            for k in range(channels):
                write_nifti(image[..., k], data.geometry, work / "imagesTr" / f"{case.case_id}_{k:04d}{FILE_ENDING}")
            write_nifti(classes, data.geometry, work / "labelsTr" / f"{case.case_id}{FILE_ENDING}")
        assert channels is not None  # set by the first case; `cases` is not empty
        label_ids = {"background": 0, **{n: i + 1 for i, n in enumerate(label_map.classes)}}
        description = {
            "channel_names": {str(k): n for k, n in enumerate(names)},
            "labels": label_ids,
            "numTraining": len(cases),
            "file_ending": FILE_ENDING,
            "name": name,
            "description": f"exported by samtune from {source}",
        }
        (work / "dataset.json").write_text(json.dumps(description, indent=2) + "\n")
        if target.exists():
            if not _same_tree(work, target):
                raise UserError(f"{target} already exists with other content; choose another --id or --out")
            return ExportResult(target, len(cases), channels, label_ids, unchanged=True)
        work.rename(target)
        return ExportResult(target, len(cases), channels, label_ids)
    finally:
        if work.exists():
            shutil.rmtree(work)
