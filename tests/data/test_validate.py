"""`check_source` on a corpus of malformed inputs: each problem named with its file."""

from __future__ import annotations

import json

import numpy as np
import pytest
import SimpleITK as sitk
from PIL import Image

from samtune.data.geometry import Geometry
from samtune.data.labels import LabelMap
from samtune.data.readers import write_image
from samtune.data.validate import check_source
from samtune.errors import DataError

GEO = Geometry((1.0, 1.0, 2.0), (0.0, 0.0, 0.0), (1, 0, 0, 0, 1, 0, 0, 0, 1))


def _png(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(array)).save(path)


def _good_pair(root, name="a", size=(4, 4)):
    image = np.arange(size[0] * size[1], dtype=np.uint8).reshape(size)
    mask = np.zeros(size, dtype=np.uint8)
    mask[1:3, 1:3] = 1
    _png(root / f"{name}.png", image)
    _png(root / f"{name}_m.png", mask)
    return f"{name}.png,{name}_m.png\n"


def _list(root, text):
    (root / "list.csv").write_text(text)
    return root / "list.csv"


def _nnunet(root, volumes, labels, channels=("MR",), label_names=None):
    (root / "dataset.json").write_text(json.dumps({
        "channel_names": {str(i): c for i, c in enumerate(channels)},
        "labels": label_names or {"background": 0, "tumour": 1, "oedema": 2},
        "file_ending": ".nii.gz",
    }))
    for name, (channel_arrays, geometry) in volumes.items():
        for c, array in enumerate(channel_arrays):
            write_image(root / "imagesTr" / f"{name}_{c:04d}.nii.gz", array, geometry)
    for name, (array, geometry) in labels.items():
        write_image(root / "labelsTr" / f"{name}.nii.gz", array, geometry)
    return root


def _vol(value=0.0, shape=(3, 4, 4), dtype=np.float32):
    return np.full(shape, value, dtype=dtype)


def _mask(shape=(3, 4, 4), value=1):
    mask = np.zeros(shape, dtype=np.uint8)
    mask[1, 1:3, 1:3] = value
    return mask


# Each builder makes one malformed source in tmp_path and returns (path, expected text).
def unreadable_image(root):
    _good_pair(root)
    (root / "a.png").write_bytes(b"\x89PNG\r\n\x1a\ntruncated")
    return _list(root, "a.png,a_m.png\n"), "list.csv row 1: cannot read image"


def missing_image(root):
    _good_pair(root)
    return _list(root, "gone.png,a_m.png\n"), "list.csv row 1: file not found: "


def missing_mask(root):
    _good_pair(root)
    return _list(root, "a.png,/masks/gone.png\n"), "masks/gone.png"


def size_mismatch(root):
    _good_pair(root)
    _png(root / "a_m.png", np.zeros((4, 5), np.uint8))
    return _list(root, "a.png,a_m.png\n"), "mask size (4, 5) does not match image size (4, 4)"


def geometry_mismatch(root):
    other = Geometry((1.0, 1.0, 3.0), (0.0, 0.0, 0.0), (1, 0, 0, 0, 1, 0, 0, 0, 1))
    return _nnunet(root, {"c1": ([_vol(1.0)], GEO)}, {"c1": (_mask(), other)}), \
        "c1.nii.gz: geometry differs from image"


def undeclared_label(root):
    return _nnunet(root, {"c1": ([_vol(1.0)], GEO)}, {"c1": (_mask(value=3), GEO)}), \
        "label value(s) [3] not declared (tumour=1, oedema=2)"


def nan_image(root):
    volume = _vol(1.0)
    volume[0, 0, 0] = np.nan
    return _nnunet(root, {"c1": ([volume], GEO)}, {"c1": (_mask(), GEO)}), \
        "c1_0000.nii.gz: 1 NaN or infinite value(s)"


def four_d_image(root):
    _nnunet(root, {}, {"c1": (_mask(), GEO)})
    (root / "imagesTr").mkdir()
    sitk.WriteImage(sitk.GetImageFromArray(np.zeros((2, 3, 4, 4), np.float32), isVector=False),
                    str(root / "imagesTr" / "c1_0000.nii.gz"))
    return root, "c1_0000.nii.gz is a 4D image"


def wrong_columns(root):
    _good_pair(root)
    return _list(root, "a.png,a_m.png\na.png,a_m.png,extra\n"), \
        "list.csv row 2: expected 2 columns (image,mask) without a header, found 3"


def colour_mask(root):
    _good_pair(root)
    colour = np.zeros((4, 4, 3), np.uint8)
    colour[0, 0] = (255, 0, 0)
    _png(root / "a_m.png", colour)
    return _list(root, "a.png,a_m.png\n"), "a_m.png has 3 differing colour channels"


def negative_label(root):
    return _nnunet(root, {"c1": ([_vol(1.0)], GEO)}, {"c1": (_mask().astype(np.int16) - 1, GEO)}), \
        "holds negative value -1"


def fractional_mask(root):
    return _nnunet(root, {"c1": ([_vol(1.0)], GEO)}, {"c1": (_mask().astype(np.float32) * 0.5, GEO)}), \
        "mask has fractional values (e.g. 0.5)"


def all_masks_empty(root):
    _good_pair(root)
    _png(root / "a_m.png", np.zeros((4, 4), np.uint8))
    return _list(root, "a.png,a_m.png\n"), "no mask holds foreground"


def image_without_mask(root):
    _png(root / "images/x.png", np.zeros((4, 4), np.uint8))
    _png(root / "images/y.png", np.zeros((4, 4), np.uint8))
    _png(root / "masks/x.png", np.ones((4, 4), np.uint8))
    return root, "images/y.png: image without a mask of the same name in masks/"


def missing_channel(root):
    return _nnunet(root, {"c1": ([_vol(1.0)], GEO)}, {"c1": (_mask(), GEO)}, channels=("T2", "ADC")), \
        "file not found: " + str(root / "imagesTr" / "c1_0001.nii.gz")


def too_many_channels(root):
    return _nnunet(root, {"c1": ([_vol(1.0), _vol(2.0)], GEO)}, {"c1": (_mask(), GEO)}, channels=("T2", "ADC")), \
        "image has 2 channels; SAM-family models take 1 or 3"


def unsupported_file_type(root):
    _good_pair(root)
    (root / "notes.txt").write_text("hello")
    return _list(root, "notes.txt,a_m.png\n"), "notes.txt: unsupported file type '.txt'"


def mask_dimension_mismatch(root):
    _nnunet(root, {"c1": ([_vol(1.0)], GEO)}, {})
    write_image(root / "labelsTr" / "c1.nii.gz", np.ones((4, 4), np.uint8), Geometry.identity(2))
    return root, "mask size (4, 4) does not match image size (3, 4, 4)"


def duplicate_case(root):
    _good_pair(root, "a")
    _good_pair(root, "b")
    return _list(root, "image,mask,case\na.png,a_m.png,p\nb.png,b_m.png,p\n"), \
        "list.csv row 3: case 'p' is also on row 2"


def channel_grid_mismatch(root):
    return _nnunet(root, {"c1": ([_vol(1.0), _vol(1.0, shape=(3, 4, 5))], GEO)}, {"c1": (_mask(), GEO)},
                   channels=("T2", "ADC")), "c1_0001.nii.gz: shape (3, 4, 5) differs from"


CORPUS = [unreadable_image, missing_image, missing_mask, size_mismatch, geometry_mismatch, undeclared_label,
          nan_image, four_d_image, wrong_columns, colour_mask, negative_label, fractional_mask, all_masks_empty,
          image_without_mask, missing_channel, too_many_channels, unsupported_file_type, mask_dimension_mismatch,
          duplicate_case, channel_grid_mismatch]


@pytest.mark.parametrize("builder", CORPUS, ids=[b.__name__ for b in CORPUS])
def test_malformed_source_is_reported(tmp_path, builder):
    path, expected = builder(tmp_path)
    report = check_source(path)
    messages = [str(p) for p in report.fatal]
    assert any(expected in m for m in messages), messages
    assert all(line in report.format() for line in messages)  # each on its own line
    with pytest.raises(DataError):
        report.raise_if_fatal()


@pytest.mark.parametrize(
    "text, expected",
    [("", "has no rows"), ("# only a comment\n", "has no rows"),
     ("path,label_file\na.png,b.png\n", None), ("image,mask\n", "has a header but no rows")],
)
def test_list_files_that_cannot_load(tmp_path, text, expected):
    (tmp_path / "l.csv").write_text(text)
    if expected is None:  # unknown names: not a header, so the first row is a missing case
        report = check_source(tmp_path / "l.csv")
        assert f"error: l.csv row 1: file not found: {tmp_path / 'path'}" in [str(p) for p in report.fatal]
        return
    with pytest.raises(DataError, match=expected):
        check_source(tmp_path / "l.csv")


def test_header_without_image_column(tmp_path):
    (tmp_path / "l.csv").write_text("mask,case\nm.png,c\n")
    with pytest.raises(DataError, match=r"header \['mask', 'case'\] has no image column"):
        check_source(tmp_path / "l.csv")


def test_dataset_json_without_file_ending(tmp_path):
    (tmp_path / "dataset.json").write_text(json.dumps({"channel_names": {"0": "CT"}, "labels": {"background": 0, "x": 1}}))
    with pytest.raises(DataError, match="'file_ending' is missing"):
        check_source(tmp_path)


def test_good_source_summary_and_warnings(tmp_path):
    rows = _good_pair(tmp_path, "a") + _good_pair(tmp_path, "b")
    _png(tmp_path / "b_m.png", np.zeros((4, 4), np.uint8))  # empty mask: a warning only
    _png(tmp_path / "b.png", np.full((4, 4), 9, np.uint8))  # constant image: a warning only
    report = check_source(_list(tmp_path, rows))
    assert not report.fatal and report.empty_cases == ["b"]
    text = report.format()
    assert "cases: 2 labelled in 2 patient group(s)" in text
    assert "image sizes: 4x4 (2)" in text and "spacings (mm): none (the format stores no spacing; distances in pixels) (2)" in text
    assert "  0: background, in 2 case(s), 28 pixels" in text
    assert "  1: foreground, in 1 case(s), 4 pixels" in text
    assert "warning: list.csv row 2:" in text and "mask is empty" in text and "image is constant (9)" in text


def test_prostate_zones_report(prostate_dir):
    report = check_source(prostate_dir / "val_5shot.csv", labels=LabelMap.from_values({"central": 254, "peripheral": 255}))
    assert not report.fatal and len(report.cases) == 5
    assert all(c.shape == (384, 384) for c in report.cases)
    assert {v for c in report.cases for v in c.values} == {0, 254, 255}


def test_jpeg_mask_warns(tmp_path):
    _good_pair(tmp_path)
    mask = np.zeros((16, 16), np.uint8)
    mask[4:12, 4:12] = 255
    Image.fromarray(mask).save(tmp_path / "m.jpg", quality=75)
    _png(tmp_path / "a.png", np.zeros((16, 16), np.uint8) + np.arange(16, dtype=np.uint8))
    report = check_source(_list(tmp_path, "a.png,m.jpg\n"))
    assert any("m.jpg: JPEG masks are lossy" in str(p) and not p.fatal for p in report.problems)
