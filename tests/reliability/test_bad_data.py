"""Bad data files, dataset.json files and list files (issue 11): refused in one line naming the file.

Each bad image goes through `samtune segment` (which reads the image before loading a
model) and the important ones through `samtune data check` and `samtune predict` too;
every refusal meets the `refused` contract (exit 2, one line, nothing written). Sizes are
hand-computed: a [4, 20, 30] int16 volume promises 4 x 20 x 30 x 2 = 4800 bytes.
"""

from __future__ import annotations

import gzip
import json
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from tests.helpers.generated_data import write_dicom_series
from PIL import Image

from samtune.data.readers import read_image
from samtune.data.validate import check_image_files
from samtune.errors import DataError

VOLUME = (np.arange(4 * 20 * 30).reshape(4, 20, 30) % 100).astype(np.int16)  # 4800 bytes of pixels
FLOATS = np.arange(4 * 20 * 30, dtype=np.float32).reshape(4, 20, 30)  # 2400 values


def _write(folder: Path, name: str, array: np.ndarray, compress: bool = False) -> Path:
    path = folder / name
    sitk.WriteImage(sitk.GetImageFromArray(array), str(path), useCompression=compress)
    return path


def _cut(path: Path, keep: float = 2 / 3) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def bomb_png(folder: Path) -> Path:
    """A 60-byte PNG whose header claims 100000 x 100000 gray pixels."""
    path = folder / "bomb.png"
    header = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header)
                     + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + _png_chunk(b"IEND", b""))
    return path


def bomb_tiff(folder: Path) -> Path:
    """A TIFF whose one directory claims 50000 x 50000 8-bit gray pixels in one strip."""
    path = folder / "bomb.tif"
    entries = [(256, 4, 50_000), (257, 4, 50_000), (258, 3, 8), (259, 3, 1), (262, 3, 1),
               (273, 4, 8), (277, 3, 1), (278, 4, 50_000), (279, 4, 2_500_000_000)]
    ifd = struct.pack("<H", len(entries)) + b"".join(
        struct.pack("<HHI", tag, kind, 1) + (struct.pack("<HH", value, 0) if kind == 3 else struct.pack("<I", value))
        for tag, kind, value in entries) + struct.pack("<I", 0)
    path.write_bytes(b"II*\x00" + struct.pack("<I", 16) + b"\x00" * 8 + ifd)
    return path


def _float_tiff(folder: Path, name: str, value: float) -> Path:
    array = np.ones((20, 30), dtype=np.float32)
    array[3, 4] = value
    path = folder / name
    Image.fromarray(array, mode="F").save(path)
    return path


def _detached(folder: Path, header: str, data: str, compress: bool = False, remove: bool = False) -> Path:
    path = _write(folder, header, VOLUME, compress)
    if remove:
        (folder / data).unlink()
    else:
        _cut(folder / data)
    return path


# name -> (maker(folder) -> path of the file to read, what the one-line message must say)
TRUNCATED = "truncated: the header promises 4800 bytes of pixel data but"
BAD_IMAGES = {
    "nii_cut": (lambda f: (_write(f, "v.nii", VOLUME), _cut(f / "v.nii"))[0], f"{TRUNCATED} the file holds 3082"),
    "nii_header_only": (lambda f: (_write(f, "v.nii", VOLUME), _cut(f / "v.nii", 352 / 5152))[0],
                        f"{TRUNCATED} the file holds 0"),
    "nii_short_header": (lambda f: (_write(f, "v.nii", VOLUME), _cut(f / "v.nii", 100 / 5152))[0],
                         "too short for a NIfTI header"),
    "niigz_cut_stream": (lambda f: (_write(f, "v.nii.gz", VOLUME, True), _cut(f / "v.nii.gz", 0.8))[0],
                         "not a complete gzip file"),
    "niigz_short_payload": (
        lambda f: (_write(f, "v.nii", VOLUME), (f / "v.nii.gz").write_bytes(gzip.compress((f / "v.nii").read_bytes()[:4000])),
                   (f / "v.nii").unlink(), f / "v.nii.gz")[-1],
        f"{TRUNCATED} the (decompressed) file holds 3648"),
    "niigz_empty": (lambda f: ((f / "v.nii.gz").write_bytes(b""), f / "v.nii.gz")[-1], "v.nii.gz"),
    "nrrd_raw_cut": (lambda f: (_write(f, "v.nrrd", VOLUME), _cut(f / "v.nrrd"))[0], f"{TRUNCATED} the file holds"),
    "nrrd_gzip_cut": (lambda f: (_write(f, "v.nrrd", VOLUME, True), _cut(f / "v.nrrd", 0.8))[0],
                      "the compressed pixel data is cut short or corrupt"),
    "nhdr_raw_cut": (lambda f: _detached(f, "v.nhdr", "v.raw"), f"{TRUNCATED} the file holds 3200"),
    "nhdr_data_missing": (lambda f: _detached(f, "v.nhdr", "v.raw", remove=True), "which does not exist"),
    "mha_raw_cut": (lambda f: (_write(f, "v.mha", VOLUME), _cut(f / "v.mha"))[0], f"{TRUNCATED} the file holds"),
    "mha_zlib_cut": (lambda f: (_write(f, "v.mha", VOLUME, True), _cut(f / "v.mha", 0.8))[0],
                     "the compressed pixel data is cut short or corrupt"),
    "mhd_raw_cut": (lambda f: _detached(f, "v.mhd", "v.raw"), f"{TRUNCATED} the file holds 3200"),
    "mhd_zraw_cut": (lambda f: _detached(f, "v.mhd", "v.zraw", compress=True),
                     "the compressed pixel data is cut short or corrupt"),
    "mhd_raw_missing": (lambda f: _detached(f, "v.mhd", "v.raw", remove=True), "which does not exist"),
    "nii_nan": (lambda f: _write(f, "v.nii", np.where(FLOATS == 5, np.nan, FLOATS).astype(np.float32)),
                "1 NaN or infinite value(s) stored in the file"),
    "niigz_inf": (lambda f: _write(f, "v.nii.gz", np.where(FLOATS < 3, np.inf, FLOATS).astype(np.float32), True),
                  "3 NaN or infinite value(s) stored in the file"),
    "mha_nan": (lambda f: _write(f, "v.mha", np.where(FLOATS % 100 == 0, np.nan, FLOATS).astype(np.float32)),
                "24 NaN or infinite value(s) of 2400"),
    "nrrd_inf": (lambda f: _write(f, "v.nrrd", np.where(FLOATS == 7, -np.inf, FLOATS).astype(np.float32)),
                 "1 NaN or infinite value(s) of 2400"),
    "tiff_nan": (lambda f: _float_tiff(f, "v.tif", np.nan), "1 NaN or infinite value(s) of 600"),
    "tiff_inf": (lambda f: _float_tiff(f, "v.tiff", np.inf), "1 NaN or infinite value(s) of 600"),
    "png_cut": (lambda f: (Image.fromarray(np.arange(600, dtype=np.uint8).reshape(20, 30)).save(f / "v.png"),
                           _cut(f / "v.png", 0.5), f / "v.png")[-1], "cannot read image"),
    "png_garbage": (lambda f: ((f / "v.png").write_bytes(os.urandom(64)), f / "v.png")[-1], "cannot read image"),
    "jpeg_cut": (lambda f: (Image.fromarray(np.arange(600, dtype=np.uint8).reshape(20, 30)).save(f / "v.jpg"),
                            _cut(f / "v.jpg", 0.5), f / "v.jpg")[-1], "cannot read image"),
    "png_bomb": (bomb_png, "100000 x 100000 = 10,000,000,000 pixels is above the limit of 89,478,485 "
                           "(a decompression bomb?); if the image is genuine, allow it with "
                           "SAMTUNE_MAX_IMAGE_PIXELS=10000000000"),
    "tiff_bomb": (bomb_tiff, "50000 x 50000 = 2,500,000,000 pixels is above the limit of 89,478,485"),
}


def _dicom(folder: Path, damage: str) -> Path:
    series = write_dicom_series(folder / "series", VOLUME[:, :16, :16].repeat(2, axis=0)[:5])
    member = series / "slice_002.dcm"
    if damage == "garbage":
        member.write_bytes(os.urandom(700))
    elif damage == "truncated":
        _cut(member, 0.97)
    else:
        member.unlink()
    return series


BAD_DICOM = {
    "garbage": ("slice_002.dcm: not a readable DICOM file (truncated or corrupt; 700 bytes), so the DICOM series"),
    "truncated": ("slice_002.dcm: not a readable DICOM file (truncated or corrupt;"),
    "missing": ("slice(s) missing between slice_001.dcm and slice_003.dcm (a step of 4 mm where slices are 2 mm apart)"),
}


def _segment(path: Path, out: Path) -> list:
    volume = not path.name.lower().endswith((".png", ".jpg", ".tif", ".tiff"))
    # a volume's labels are a volume, as `predict --model` writes them (segment is its alias)
    return ["segment", path, "--box", "1", "1", "8", "8", "--out", out / ("mask.nii.gz" if volume else "mask.png"),
            *(["--slice", "0"] if volume else [])]


@pytest.mark.parametrize("name", sorted(BAD_IMAGES))
def test_bad_image_refused_by_segment(name, tmp_path, refused):
    maker, expected = BAD_IMAGES[name]
    path = maker(tmp_path)
    refused(_segment(path, tmp_path), watch=[tmp_path], names=[path.name, expected])


@pytest.mark.parametrize("damage", sorted(BAD_DICOM))
def test_damaged_dicom_series_refused(damage, tmp_path, refused):
    series = _dicom(tmp_path, damage)
    refused(_segment(series, tmp_path), watch=[tmp_path], names=[BAD_DICOM[damage], "--skip-bad-dicom"])


def test_skipped_dicom_member_warns_by_name_without_itk_warnings(tmp_path, capfd):
    from samtune.data.formats_dicom import skip_bad_dicom

    series = _dicom(tmp_path, "truncated")
    capfd.readouterr()
    with skip_bad_dicom():
        assert read_image(series).array.shape == (4, 16, 16)
    err = capfd.readouterr().err  # file-descriptor level: ITK writes its warnings there, not to sys.stderr
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 2 and all(line.startswith("samtune: warning: ") for line in lines), err
    assert f"{series / 'slice_002.dcm'}: not a readable DICOM file" in lines[0]
    assert "ImageSeriesReader" not in err and "Non uniform sampling" not in err


@pytest.mark.parametrize("name", ["niigz_short_payload", "nii_cut", "mha_nan", "tiff_nan", "mhd_raw_cut"])
def test_bad_image_refused_by_data_check(name, tmp_path, refused, capsys):
    maker, expected = BAD_IMAGES[name]
    path = maker(tmp_path)
    mask = tmp_path / f"mask{''.join(path.suffixes)}"
    shape = (20, 30) if path.suffix in (".tif", ".tiff") else (4, 20, 30)
    _write(tmp_path, mask.name, np.zeros(shape, np.uint8)) if shape == (4, 20, 30) else \
        Image.fromarray(np.zeros(shape, np.uint8)).save(mask)
    listing = tmp_path / "list.csv"
    listing.write_text(f"{path.name},{mask.name}\n")
    message = refused(["data", "check", listing], watch=[tmp_path], names=["1 error(s)", "list.csv row 1", path.name, expected])
    assert "see above" not in message


def test_truncated_mask_refused_by_data_check(tmp_path, refused):
    _write(tmp_path, "image.nii.gz", VOLUME, True)
    mask = _write(tmp_path, "mask.nii.gz", (VOLUME > 50).astype(np.uint8))
    mask.write_bytes(gzip.compress(gzip.decompress(mask.read_bytes())[:-1000]))
    (tmp_path / "list.csv").write_text("image.nii.gz,mask.nii.gz\n")
    refused(["data", "check", tmp_path / "list.csv"], watch=[tmp_path],
            names=["mask.nii.gz: truncated: the header promises 2400 bytes of pixel data but the (decompressed) file holds 1400"])



def _predict(inputs: list, out: Path, checkpoint: Path, *extra: str) -> list:
    return ["predict", *inputs, "--model", "tiny_vit_test", "--checkpoint", checkpoint,
            "--box", "2", "2", "12", "12", "--slice", "1", "--out", out, *extra]


@pytest.mark.usefixtures("one_thread")
def test_predict_refuses_then_skips_bad_dicom_member_with_a_warning(tmp_path, refused, tiny_checkpoint, capsys):
    from samtune.cli.main import main

    series = _dicom(tmp_path, "garbage")
    out = tmp_path / "out"
    refused(_predict([series], out, tiny_checkpoint), watch=[tmp_path], names=["slice_002.dcm", "--skip-bad-dicom"])
    capsys.readouterr()
    assert main([str(a) for a in _predict([series], out, tiny_checkpoint, "--skip-bad-dicom")]) == 0
    err = capsys.readouterr().err
    warnings = [line for line in err.splitlines() if line.strip()]
    assert warnings[0].startswith("samtune: warning: ") and f"{series / 'slice_002.dcm'}: not a readable DICOM" in warnings[0]
    assert "left out of the DICOM series (--skip-bad-dicom)" in warnings[0]
    assert "slice(s) missing between slice_001.dcm and slice_003.dcm" in warnings[1]
    assert all(line.startswith("samtune: warning: ") for line in warnings)  # no bare ITK warning
    assert read_image(out / "series.nii.gz").array.shape == (4, 16, 16)


@pytest.mark.usefixtures("one_thread")
def test_predict_refuses_truncated_nifti(tmp_path, refused, tiny_checkpoint):
    path = BAD_IMAGES["niigz_short_payload"][0](tmp_path)
    refused(_predict([path], tmp_path / "out", tiny_checkpoint), watch=[tmp_path], names=[path.name, TRUNCATED])


def test_pixel_limit_is_read_from_the_environment(tmp_path, monkeypatch, refused):
    path = tmp_path / "small.png"
    Image.fromarray(np.zeros((40, 50), np.uint8)).save(path)
    monkeypatch.setenv("SAMTUNE_MAX_IMAGE_PIXELS", "1999")
    refused(_segment(path, tmp_path), watch=[tmp_path],
            names=["50 x 40 = 2,000 pixels is above the limit of 1,999", "SAMTUNE_MAX_IMAGE_PIXELS=2000"])
    monkeypatch.setenv("SAMTUNE_MAX_IMAGE_PIXELS", "2000")
    assert read_image(path).array.shape == (40, 50)
    monkeypatch.setenv("SAMTUNE_MAX_IMAGE_PIXELS", "lots")
    refused(_segment(path, tmp_path), watch=[tmp_path], names=["SAMTUNE_MAX_IMAGE_PIXELS='lots' is not a positive"])


def test_check_image_files_reads_every_input_before_anything_is_written(tmp_path):
    good = _write(tmp_path, "good.nii.gz", VOLUME, True)
    bad = BAD_IMAGES["nii_cut"][0](tmp_path)
    nan = _float_tiff(tmp_path, "nan.tif", np.nan)
    checks = check_image_files([good])
    assert [(c.path, c.shape, c.spatial_ndim) for c in checks] == [(good, (4, 20, 30), 3)]
    with pytest.raises(DataError) as info:
        check_image_files([good, bad, nan])
    message = str(info.value)
    assert message.startswith(f"{bad}: {TRUNCATED} the file holds 3082")
    assert message.endswith("(1 more of the 3 inputs are refused too)")


# ---- nnU-Net dataset.json ---------------------------------------------------------------

GOOD_JSON = {"channel_names": {"0": "CT"}, "labels": {"background": 0, "organ": 1}, "numTraining": 1,
             "file_ending": ".nii.gz"}

BAD_JSON = {
    "labels_list": ({"labels": ["background", "organ"]}, "'labels' is a list; it must map class names to values"),
    "labels_missing": ({"labels": None}, "'labels' is missing; add it"),
    "labels_string": ({"labels": "organ"}, "'labels' is a string"),
    "label_not_integer": ({"labels": {"background": 0, "organ": "one"}}, "'labels' entry 'organ' is 'one'"),
    "label_float": ({"labels": {"background": 0, "organ": 1.5}}, "'labels' entry 'organ' is 1.5"),
    "label_empty_region": ({"labels": {"background": 0, "organ": []}}, "'labels' entry 'organ' is []"),
    "labels_empty": ({"labels": {}}, "'labels' is empty"),
    "background_only": ({"labels": {"background": 0}}, "'labels' declares only background"),
    "channels_missing": ({"channel_names": None}, "'channel_names' is missing"),
    "channels_list": ({"channel_names": ["CT"]}, "'channel_names' is a list, not a mapping"),
    "channels_keys": ({"channel_names": {"a": "CT"}}, "channel_names keys must be '0', '1'"),
    "file_ending_missing": ({"file_ending": None}, "'file_ending' is missing; it must be the image files' extension"),
    "file_ending_no_dot": ({"file_ending": "nii.gz"}, "'file_ending' is 'nii.gz'"),
    "file_ending_number": ({"file_ending": 3}, "'file_ending' is 3"),
    "training_not_list": ({"file_ending": None, "training": {"image": "a"}}, "'training' is an object; it must be a list"),
    "training_entry": ({"file_ending": None, "training": [{"image": "./imagesTr/a.nii.gz"}]},
                       "'training' entry 0 is {'image': './imagesTr/a.nii.gz'}; each entry needs 'image' and 'label'"),
    "test_entry": ({"file_ending": None, "training": [{"image": "imagesTr/a.nii.gz", "label": "labelsTr/a.nii.gz"}],
                    "test": [3]}, "'test' entry 0 is 3; it must be an image path"),
}


@pytest.mark.parametrize("name", sorted(BAD_JSON))
def test_bad_dataset_json_refused(name, tmp_path, refused):
    changes, expected = BAD_JSON[name]
    data = {**GOOD_JSON, **changes}
    data = {key: value for key, value in data.items() if value is not None}
    folder = tmp_path / "Dataset001_X"
    (folder / "labelsTr").mkdir(parents=True)
    (folder / "dataset.json").write_text(json.dumps(data))
    refused(["data", "check", folder], watch=[tmp_path], names=[f"{folder / 'dataset.json'}: {expected}"])


@pytest.mark.parametrize("content, expected", [
    (b'{"labels": {"a": 1},}', "line 1, column 21: not valid JSON (Expecting property name"),
    (b"\xff\xfe{}", "byte 0 is not UTF-8 text"),
    (b"[1, 2]", "holds a list; it must hold a JSON object"),
])
def test_unreadable_dataset_json_refused(content, expected, tmp_path, refused):
    folder = tmp_path / "Dataset001_X"
    folder.mkdir()
    (folder / "dataset.json").write_bytes(content)
    refused(["data", "check", folder], watch=[tmp_path], names=[str(folder / "dataset.json"), expected])


# ---- list files -------------------------------------------------------------------------

@pytest.fixture
def pair(tmp_path):
    Image.fromarray(np.full((20, 30), 9, np.uint8)).save(tmp_path / "a.png")
    Image.fromarray((np.arange(600).reshape(20, 30) % 2).astype(np.uint8)).save(tmp_path / "a_mask.png")
    return tmp_path


BAD_LISTS = {
    "three_columns": (b"a.png,a_mask.png,extra\n",
                      "has no usable rows: list.csv row 1: expected 2 columns (image,mask) without a header, found 3"),
    "three_columns_many": (b"a.png,a_mask.png,x\na.png,a_mask.png,y\n", "found 3: ['a.png', 'a_mask.png', 'x'] (and 1 more row(s) like it)"),
    "header_without_image": (b"mask,case\na_mask.png,a\n", "has no image column; name the columns image,mask[,case,group]"),
    "header_only": (b"image,mask\n", "has a header but no rows"),
    "empty": (b"\n# only a comment\n", "has no rows; add one 'image,mask' row per case"),
    "binary": (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff", "line 1: not UTF-8 text (is it a CSV file?)"),
    "nul_bytes": (b"a.png,a_mask.png\n\x00\x00", "line 2: holds NUL bytes"),
    "empty_image": (b",a_mask.png\n", "list.csv row 1: empty image path"),
    "missing_image": (b"a.png,a_mask.png\nb.png,a_mask.png\n", "list.csv row 2: file not found:"),
    "missing_mask": (b"a.png,b_mask.png\n", "list.csv row 1: file not found:"),
    "duplicate_case": (b"a.png,a_mask.png\na.png,a_mask.png\n", "list.csv row 2: case 'a' is also on row 1"),
    "header_wrong_width": (b"image,mask\na.png,a_mask.png,x\n", "list.csv row 2: expected 2 columns, found 3"),
    "mask_size": (b"a.png,small.png\n", "small.png: mask size (5, 5) does not match image size (20, 30)"),
}


@pytest.mark.parametrize("name", sorted(BAD_LISTS))
def test_bad_list_file_refused(name, pair, refused):
    content, expected = BAD_LISTS[name]
    Image.fromarray(np.zeros((5, 5), np.uint8)).save(pair / "small.png")
    listing = pair / "list.csv"
    listing.write_bytes(content)
    message = refused(["data", "check", listing], watch=[pair], names=["list.csv", expected])
    assert "see the problems above" not in message


# ---- case-level problems through `data check`, bad files through `eval --pred/--gt` ----------

def _case(folder: Path, image: np.ndarray, mask: np.ndarray, image_spacing=(1.0, 1.0, 1.0), mask_spacing=(1.0, 1.0, 1.0)):
    for name, array, spacing in (("img.nii.gz", image, image_spacing), ("seg.nii.gz", mask, mask_spacing)):
        itk = sitk.GetImageFromArray(array)
        itk.SetSpacing(spacing)
        sitk.WriteImage(itk, str(folder / name))
    (folder / "list.csv").write_text("img.nii.gz,seg.nii.gz\n")
    return folder / "list.csv"


SEG = (VOLUME > 80).astype(np.uint8)
BAD_CASES = {
    "mask_size": (lambda f: _case(f, VOLUME, SEG[:, :10]), "seg.nii.gz: mask size (4, 10, 30) does not match image size (4, 20, 30)"),
    "mask_spacing": (lambda f: _case(f, VOLUME, SEG, mask_spacing=(1.0, 1.0, 2.5)), "seg.nii.gz: geometry differs from image"),
    "mask_nan": (lambda f: _case(f, VOLUME, np.where(SEG > 0, np.nan, 0).astype(np.float32)), "seg.nii.gz: "),
    "mask_negative": (lambda f: _case(f, VOLUME, SEG.astype(np.int16) - 1), "seg.nii.gz holds negative value -1"),
    "mask_empty_everywhere": (lambda f: _case(f, VOLUME, np.zeros_like(SEG)), "no mask holds foreground"),
    "image_4d": (lambda f: (_case(f, VOLUME, SEG), sitk.WriteImage(
        sitk.GetImageFromArray(np.zeros((2, 4, 20, 30), np.int16), isVector=False), str(f / "img.nii.gz")), f / "list.csv")[-1],
        "img.nii.gz is a 4D image"),
}


@pytest.mark.parametrize("name", sorted(BAD_CASES))
def test_bad_case_refused_by_data_check(name, tmp_path, refused):
    maker, expected = BAD_CASES[name]
    listing = maker(tmp_path)
    refused(["data", "check", listing], watch=[tmp_path], names=["1 error(s)", expected])


@pytest.mark.parametrize("name, side", [("nii_cut", "pred"), ("mha_nan", "gt"), ("niigz_short_payload", "gt"),
                                        ("png_bomb", "pred")])
def test_bad_file_refused_by_eval(name, side, tmp_path, refused):
    maker, expected = BAD_IMAGES[name]
    for folder in ("pred", "gt"):
        (tmp_path / folder).mkdir()
    bad = maker(tmp_path / side)
    other = tmp_path / ("gt" if side == "pred" else "pred")
    if bad.suffix == ".png":
        Image.fromarray(np.zeros((20, 30), np.uint8)).save(other / bad.name)
    else:
        _write(other, bad.name, (VOLUME > 50).astype(np.uint8))
    refused(["eval", "--pred", tmp_path / "pred", "--gt", tmp_path / "gt", "--out", tmp_path / "out"],
            watch=[tmp_path], names=[bad.name, expected])


@pytest.mark.parametrize("bad_in", ["train", "val"])
def test_training_data_refuses_truncated_volume_before_any_dataset(bad_in, tmp_path):
    from samtune.engine.config import DataConfig, TaskConfig
    from samtune.engine.data import build_training_data

    good = _case(tmp_path, VOLUME, SEG)  # list.csv: img.nii.gz,seg.nii.gz
    bad = BAD_IMAGES["niigz_short_payload"][0](tmp_path)  # v.nii.gz, 3648 of 4800 bytes
    _write(tmp_path, "v_seg.nii.gz", SEG)
    (tmp_path / "bad.csv").write_text("v.nii.gz,v_seg.nii.gz\n")
    lists = {"train": good, "val": good, bad_in: tmp_path / "bad.csv"}
    data = DataConfig(train=str(lists["train"]), val=str(lists["val"]))
    with pytest.raises(DataError) as info:
        build_training_data(data, TaskConfig(), image_size=32, normalization="minmax", seed=0)
    assert str(info.value).startswith(f"bad.csv row 1: {bad}: {TRUNCATED} the (decompressed) file holds 3648")
