"""Sources: the study's list files, nnU-Net folders, images/ + masks/ folders."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from samtune.data.geometry import Geometry
from samtune.data.readers import write_image
from samtune.data.sources import load_source
from samtune.errors import DataError


def _png(path, value=0, size=(4, 4)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full(size, value, dtype=np.uint8)).save(path)
    return path


def test_study_list_loads_as_is(prostate_dir):
    source = load_source(prostate_dir / "train_5shot.csv")
    assert source.kind == "list" and source.root == prostate_dir.parent  # the list's parent
    assert [c.case_id for c in source.cases] == ["BIDMC05_32", "I2CVB05_25", "UCL29_7", "RUNMC03_12", "BIDMC04_22"]
    first = source.cases[0]
    assert first.images == (prostate_dir / "images/patient5/study5/volumn5/BIDMC05_32.png",)
    assert first.mask == prostate_dir / "masks/BIDMC05_32.png"  # stray leading '/' accepted
    assert first.group == "MRI-Prostate/images/patient5/study5/volumn5"
    assert first.origin == "train_5shot.csv row 1"
    assert not source.problems


def test_tsv_with_header_case_and_group(tmp_path):
    for name in ("a", "b"):
        _png(tmp_path / "img" / f"{name}.png")
        _png(tmp_path / "seg" / f"{name}.png")
    (tmp_path / "list.tsv").write_text(
        "image\tmask\tpatient\n# comment\nimg/a.png\tseg/a.png\tP1\n\nimg/b.png\t/seg/b.png\tP1\n"
    )
    source = load_source(tmp_path / "list.tsv")
    assert source.root == tmp_path
    assert [(c.case_id, c.group) for c in source.cases] == [("a", "P1"), ("b", "P1")]
    assert source.cases[1].mask == tmp_path / "seg/b.png"
    assert source.cases[1].origin == "list.tsv row 5"


def test_flat_list_gives_one_group_per_image(tmp_path):
    for name in ("a", "b"):
        _png(tmp_path / f"{name}.png")
        _png(tmp_path / f"{name}_m.png")
    (tmp_path / "l.csv").write_text("a.png,a_m.png\nb.png,b_m.png\n")
    assert [c.group for c in load_source(tmp_path / "l.csv").cases] == ["a", "b"]


def test_images_and_masks_folders(tmp_path):
    _png(tmp_path / "images/p1/x.png")
    _png(tmp_path / "images/p2/y.png")
    _png(tmp_path / "images/p2/z.png")
    _png(tmp_path / "masks/x.png")
    _png(tmp_path / "masks/y.png")
    _png(tmp_path / "masks/w.png")
    source = load_source(tmp_path)
    assert source.kind == "folders"
    assert [(c.case_id, c.group) for c in source.cases] == [("x", "p1"), ("y", "p2")]
    messages = sorted(str(p) for p in source.problems)
    assert messages[0].endswith("images/p2/z.png: image without a mask of the same name in masks/")
    assert messages[1].endswith("masks/w.png: mask without an image of the same name in images/")


def _nnunet(tmp_path, channels=("T2", "ADC")):
    geometry = Geometry((0.5, 0.5, 3.0), (0.0, 0.0, 0.0), (1, 0, 0, 0, 1, 0, 0, 0, 1))
    (tmp_path / "dataset.json").write_text(json.dumps({
        "channel_names": {str(i): n for i, n in enumerate(channels)},
        "labels": {"background": 0, "PZ": 1, "TZ": 2},
        "numTraining": 2, "file_ending": ".nii.gz",
    }))
    volume = np.zeros((3, 4, 5), dtype=np.int16)
    for case in ("prostate_00", "prostate_01"):
        for c in range(len(channels)):
            write_image(tmp_path / "imagesTr" / f"{case}_{c:04d}.nii.gz", volume, geometry)
        write_image(tmp_path / "labelsTr" / f"{case}.nii.gz", volume.astype(np.uint8), geometry)
    write_image(tmp_path / "imagesTr" / "prostate_09_0000.nii.gz", volume, geometry)
    for c in range(len(channels)):
        write_image(tmp_path / "imagesTs" / f"prostate_05_{c:04d}.nii.gz", volume, geometry)
    return tmp_path


def test_nnunet_v2_folder(tmp_path):
    source = load_source(_nnunet(tmp_path))
    assert source.kind == "nnunet" and source.channel_names == ["T2", "ADC"]
    assert source.labels.classes == ("PZ", "TZ")
    case = source.cases[0]
    assert case.case_id == "prostate_00" and case.group == "prostate_00"
    assert [p.name for p in case.images] == ["prostate_00_0000.nii.gz", "prostate_00_0001.nii.gz"]
    assert case.mask.name == "prostate_00.nii.gz"
    assert [c.case_id for c in source.test_cases] == ["prostate_05"] and source.test_cases[0].mask is None
    assert [str(p) for p in source.problems] == [
        "error: imagesTr/prostate_09_0000.nii.gz: no label file labelsTr/prostate_09.nii.gz"
    ]


def test_nnunet_v1_decathlon(tmp_path):
    write_image(tmp_path / "imagesTr/la_003.nii.gz", np.zeros((2, 3, 3), np.int16))
    write_image(tmp_path / "labelsTr/la_003.nii.gz", np.zeros((2, 3, 3), np.uint8))
    (tmp_path / "dataset.json").write_text(json.dumps({
        "modality": {"0": "MRI"}, "labels": {"0": "background", "1": "left atrium"},
        "training": [{"image": "./imagesTr/la_003.nii.gz", "label": "./labelsTr/la_003.nii.gz"}],
        "test": [],
    }))
    source = load_source(tmp_path)
    assert source.cases[0].case_id == "la_003" and source.labels.classes == ("left atrium",)
    assert source.cases[0].images[0].name == "la_003.nii.gz"


def test_detection_errors(tmp_path):
    with pytest.raises(DataError, match="data source not found"):
        load_source(tmp_path / "nope")
    with pytest.raises(DataError, match="is not a recognised data source"):
        load_source(tmp_path)
    (tmp_path / "dataset.json").write_text("{not json")
    with pytest.raises(DataError, match="dataset.json, line 1, column 2: not valid JSON"):
        load_source(tmp_path)
