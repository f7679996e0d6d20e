"""nnU-Net raw dataset folders, accepted as they are.

v2 layout (nnU-Net's documentation, "dataset format")::

    DatasetXXX_Name/
        dataset.json     {"channel_names": {"0": "T2"}, "labels": {"background": 0, "PZ": 1},
                          "numTraining": 32, "file_ending": ".nii.gz"}
        imagesTr/CASE_0000.nii.gz   one file per channel: CASE_{channel:04d}{file_ending}
        labelsTr/CASE.nii.gz
        imagesTs/CASE_0000.nii.gz   optional, unlabelled

Medical Segmentation Decathlon / nnU-Net v1 files (``modality`` instead of
``channel_names``, ``labels`` keyed by value, a ``training`` list of image/label pairs)
are read too. Each case is its own patient group.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from samtune.data.labels import LabelMap
from samtune.data.cases import Case, Problem, Source
from samtune.errors import DataError

_CHANNEL_SUFFIX = re.compile(r"^(?P<case>.+)_(?P<channel>\d{4})$")


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise DataError(f"cannot read {path}: {error.strerror or error}") from None
    except UnicodeDecodeError as error:
        raise DataError(f"{path}: byte {error.start} is not UTF-8 text; save dataset.json as UTF-8 JSON") from None
    except json.JSONDecodeError as error:
        raise DataError(f"{path}, line {error.lineno}, column {error.colno}: not valid JSON ({error.msg}); "
                        "fix the JSON there") from None
    if not isinstance(data, dict):
        raise DataError(f"{path} holds {_json_type(data)}; it must hold a JSON object with channel_names, "
                        "labels and file_ending")
    return data


def _channel_names(data: dict, path: Path) -> list[str]:
    key = "channel_names" if "channel_names" in data or "modality" not in data else "modality"
    channels = data.get(key)
    if not isinstance(channels, dict) or not channels:
        got = "missing" if channels is None else f"a {type(channels).__name__}, not a mapping" if not isinstance(
            channels, dict) else "empty"
        raise DataError(f"{path}: '{key}' is {got}; write it as a mapping of channel number to name, "
                        "e.g. \"channel_names\": {\"0\": \"CT\"}")
    try:
        ordered = sorted(channels.items(), key=lambda item: int(item[0]))
    except ValueError as error:
        raise DataError(f"{path}: channel_names keys must be '0', '1', ...; got {list(channels)}") from error
    if [int(k) for k, _ in ordered] != list(range(len(ordered))):
        raise DataError(f"{path}: channel_names keys must be 0..{len(ordered) - 1}, got {list(channels)}")
    return [str(name) for _, name in ordered]


def _json_type(value: object) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "true/false", type(None): "null"}
    return names.get(type(value), "a number")


def _labels(data: dict, path: Path) -> LabelMap:
    """The declared labels; every malformed form named with the file and the field."""
    example = 'e.g. "labels": {"background": 0, "tumour": 1}'
    if "labels" not in data:
        raise DataError(f"{path}: 'labels' is missing; add it, {example}")
    labels = data["labels"]
    if not isinstance(labels, dict):
        raise DataError(f"{path}: 'labels' is {_json_type(labels)}; it must map class names to values, {example}")
    for name, value in labels.items():
        values = value if isinstance(value, list) else [value]
        v1_name = str(name).lstrip("-").isdigit() and isinstance(value, str)
        if not v1_name and (not values or not all(
                (isinstance(v, int) and not isinstance(v, bool)) or (isinstance(v, str) and v.isdigit())
                for v in values)):
            raise DataError(f"{path}: 'labels' entry '{name}' is {value!r}; each class needs an integer value "
                            f"(or a list of them for a region), {example}")
    try:
        return LabelMap.from_dataset_json(labels)
    except DataError as error:
        raise DataError(f"{path}: {str(error).removeprefix('dataset.json ')}") from None


def _cases_in(folder: Path, ending: str) -> dict[str, list[int]]:
    """Case id -> channel numbers of the CASE_XXXX{ending} files in ``folder``."""
    found: dict[str, list[int]] = {}
    if not folder.is_dir():
        return found
    for item in sorted(folder.iterdir()):
        if not item.name.endswith(ending):
            continue
        match = _CHANNEL_SUFFIX.match(item.name[: -len(ending)])
        if match:
            found.setdefault(match["case"], []).append(int(match["channel"]))
    return found


def load_nnunet(folder: Path) -> Source:
    """Cases of an nnU-Net raw dataset folder (v2, or v1 / Decathlon)."""
    json_path = folder / "dataset.json"
    data = _read_json(json_path)
    channels = _channel_names(data, json_path)
    labels = _labels(data, json_path)
    if "training" in data and "file_ending" not in data:
        return _load_v1(folder, data, channels, labels)
    ending = data.get("file_ending")
    if not isinstance(ending, str) or not ending.startswith("."):
        got = "missing" if ending is None else f"{ending!r}"
        raise DataError(f"{json_path}: 'file_ending' is {got}; it must be the image files' extension "
                        "with its dot, e.g. \"file_ending\": \".nii.gz\"")
    problems: list[Problem] = []
    cases = []
    labels_dir = folder / "labelsTr"
    if not labels_dir.is_dir():
        raise DataError(f"{folder}: labelsTr/ folder is missing; an nnU-Net dataset holds imagesTr/ and "
                        "labelsTr/ beside dataset.json")
    label_files = sorted(p for p in labels_dir.iterdir() if p.name.endswith(ending))
    images_found = _cases_in(folder / "imagesTr", ending)
    for label in label_files:
        case_id = label.name[: -len(ending)]
        images = tuple(folder / "imagesTr" / f"{case_id}_{c:04d}{ending}" for c in range(len(channels)))
        cases.append(Case(case_id, images, label, case_id, f"labelsTr/{label.name}"))
    labelled = {case.case_id for case in cases}
    for case_id, found_channels in images_found.items():
        if case_id not in labelled:
            problems.append(Problem(f"imagesTr/{case_id}_0000{ending}", f"no label file labelsTr/{case_id}{ending}"))
        extra = [c for c in found_channels if c >= len(channels)]
        if extra:
            problems.append(Problem(
                f"imagesTr/{case_id}_{extra[0]:04d}{ending}",
                f"channel {extra[0]} is not declared in channel_names ({len(channels)} channel(s))",
            ))
    declared = data.get("numTraining")
    if declared is not None and (not isinstance(declared, int) or isinstance(declared, bool)):
        problems.append(Problem(str(json_path), f"'numTraining' is {declared!r}, not a whole number; "
                                "it is not used, but fix it for nnU-Net", fatal=False))
    elif isinstance(declared, int) and declared != len(cases):
        problems.append(Problem(str(json_path), f"numTraining is {declared} but labelsTr holds {len(cases)} cases", fatal=False))
    if not cases:
        raise DataError(f"{folder}: labelsTr/ holds no '*{ending}' files; add the label files or fix "
                        "'file_ending' in dataset.json")
    test_cases = [
        Case(case_id, tuple(folder / "imagesTs" / f"{case_id}_{c:04d}{ending}" for c in range(len(channels))),
             None, case_id, f"imagesTs/{case_id}")
        for case_id in _cases_in(folder / "imagesTs", ending)
    ]
    return Source("nnunet", folder, folder, cases, test_cases, labels, channels, problems)


def _v1_images(folder: Path, listed: str, channels: int) -> tuple[Path, ...]:
    """A v1 entry names 'imagesTr/x.nii.gz'; converted datasets store x_0000.nii.gz."""
    path = folder / listed
    if path.exists():
        return (path,)
    stem = path.name[: -len(".nii.gz")] if path.name.endswith(".nii.gz") else path.stem
    suffix = path.name[len(stem):]
    split = tuple(path.with_name(f"{stem}_{c:04d}{suffix}") for c in range(channels))
    return split if split[0].exists() else (path,)


def _load_v1(folder: Path, data: dict, channels: list[str], labels: LabelMap) -> Source:
    cases = []
    json_path = folder / "dataset.json"
    for key in ("training", "test"):
        if not isinstance(data.get(key) or [], list):
            raise DataError(f"{json_path}: '{key}' is {_json_type(data[key])}; it must be a list")
    for index, entry in enumerate(data.get("training") or []):
        if not isinstance(entry, dict) or not all(isinstance(entry.get(k), str) for k in ("image", "label")):
            raise DataError(f"{json_path}: 'training' entry {index} is {entry!r}; each entry needs 'image' and "
                            "'label' paths, e.g. {\"image\": \"./imagesTr/a.nii.gz\", \"label\": \"./labelsTr/a.nii.gz\"}")
        label = folder / entry["label"]
        case_id = label.name.split(".")[0]
        images = _v1_images(folder, entry["image"], len(channels))
        cases.append(Case(case_id, images, label, case_id, f"dataset.json training[{index}]"))
    if not cases:
        raise DataError(f"{folder / 'dataset.json'}: the 'training' list is empty")
    test_cases = []
    for index, listed in enumerate(data.get("test") or []):
        if not isinstance(listed, str):
            raise DataError(f"{json_path}: 'test' entry {index} is {listed!r}; it must be an image path")
        images = _v1_images(folder, listed, len(channels))
        case_id = Path(listed).name.split(".")[0]
        test_cases.append(Case(case_id, images, None, case_id, f"dataset.json test {listed}"))
    return Source("nnunet", folder, folder, cases, test_cases, labels, channels, [])
