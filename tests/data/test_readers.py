"""Readers and writers: every format, bit depth and geometry, plus real files."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
from PIL import Image

from samtune.assets import mni_template
from samtune.data.geometry import Geometry
from samtune.data.readers import extension_of, read_image, write_image
from samtune.errors import DataError

GEOMETRY_3D = Geometry(
    spacing=(0.5, 0.8, 2.5),
    origin=(-12.0, 7.5, 100.0),
    direction=(0.0, 1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, -1.0),
)


@pytest.mark.parametrize(
    "array",
    [
        np.array([[0, 7], [200, 255]], dtype=np.uint8),
        np.array([[0, 1000], [65535, 3]], dtype=np.uint16),
        np.arange(24, dtype=np.uint8).reshape(2, 4, 3),
        np.arange(32, dtype=np.uint8).reshape(2, 4, 4),
    ],
    ids=["gray8", "gray16", "rgb", "rgba"],
)
@pytest.mark.parametrize("ext", [".png", ".tif"])
def test_2d_formats_keep_values_and_depth(tmp_path, array, ext):
    path = tmp_path / f"a{ext}"
    Image.fromarray(array).save(path)
    loaded = read_image(path)
    assert loaded.array.dtype == array.dtype
    np.testing.assert_array_equal(loaded.array, array)
    assert loaded.geometry == Geometry.identity(2)
    assert loaded.spatial_shape == array.shape[:2]
    assert loaded.channels == (1 if array.ndim == 2 else array.shape[2])


@pytest.mark.parametrize("ext", [".png", ".tif"])
def test_16bit_colour_is_not_reduced_to_8bit(tmp_path, ext):
    # Pillow would silently return 8 bits here; the reader must keep 16.
    array = np.array([[[0, 300, 65535], [1, 2, 40000]]], dtype=np.uint16)
    path = tmp_path / f"rgb16{ext}"
    sitk.WriteImage(sitk.GetImageFromArray(array, isVector=True), str(path))
    loaded = read_image(path)
    assert loaded.array.dtype == np.uint16 and loaded.geometry.dim == 2
    np.testing.assert_array_equal(loaded.array, array)


def test_bmp_and_jpeg(tmp_path):
    gray = np.full((8, 8), 100, dtype=np.uint8)
    Image.fromarray(gray).save(tmp_path / "a.bmp")
    np.testing.assert_array_equal(read_image(tmp_path / "a.bmp").array, gray)
    Image.fromarray(gray).save(tmp_path / "a.jpg", quality=95)
    jpeg = read_image(tmp_path / "a.jpg").array
    assert jpeg.shape == (8, 8) and abs(int(jpeg[4, 4]) - 100) <= 1


def test_palette_png_mask_keeps_indices(tmp_path):
    indices = np.array([[0, 1], [2, 1]], dtype=np.uint8)
    image = Image.fromarray(indices, mode="P")
    image.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0] + [0] * 759)
    image.save(tmp_path / "m.png")
    np.testing.assert_array_equal(read_image(tmp_path / "m.png", role="mask").array, indices)
    as_image = read_image(tmp_path / "m.png").array
    np.testing.assert_array_equal(as_image[0, 1], [255, 0, 0])


def test_multipage_tiff_is_a_volume(tmp_path):
    pages = [Image.fromarray(np.full((3, 4), v, dtype=np.uint16)) for v in (1, 2, 3)]
    pages[0].save(tmp_path / "stack.tif", save_all=True, append_images=pages[1:])
    loaded = read_image(tmp_path / "stack.tif")
    assert loaded.array.shape == (3, 3, 4) and loaded.geometry.dim == 3
    assert loaded.array[:, 0, 0].tolist() == [1, 2, 3]


@pytest.mark.parametrize("name", ["v.nii", "v.nii.gz", "v.nrrd", "v.mha", "v.mhd"])
def test_volume_round_trip_keeps_geometry(tmp_path, name):
    volume = np.arange(2 * 3 * 4, dtype=np.int16).reshape(2, 3, 4)  # [z, y, x]
    write_image(tmp_path / name, volume, GEOMETRY_3D)
    loaded = read_image(tmp_path / name)
    np.testing.assert_array_equal(loaded.array, volume)
    assert loaded.array.dtype == np.int16
    assert loaded.geometry.close_to(GEOMETRY_3D), loaded.geometry
    assert loaded.geometry.array_spacing == pytest.approx((2.5, 0.8, 0.5))
    # atomic write leaves no staging folder behind
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    if name.endswith(".mhd"):
        assert sorted(p.suffix for p in tmp_path.iterdir()) in ([".mhd", ".raw"], [".mhd", ".zraw"])


def test_sitk_axis_convention(tmp_path):
    # SimpleITK size is (x, y, z) = (4, 3, 2); our array is [z, y, x] = (2, 3, 4).
    image = sitk.Image([4, 3, 2], sitk.sitkUInt8)
    image.SetPixel(3, 1, 0, 9)  # x=3, y=1, z=0
    image.SetSpacing((0.5, 0.8, 2.5))
    sitk.WriteImage(image, str(tmp_path / "axes.nii.gz"))
    loaded = read_image(tmp_path / "axes.nii.gz")
    assert loaded.array.shape == (2, 3, 4) and loaded.array[0, 1, 3] == 9
    assert loaded.geometry.spacing == pytest.approx((0.5, 0.8, 2.5))


def test_dicom_series_folder(tmp_path, dicom_series):
    volume = np.random.default_rng(0).integers(-1000, 2000, size=(5, 6, 7)).astype(np.int16)
    folder = dicom_series(tmp_path / "series", volume)
    loaded = read_image(folder)
    assert loaded.array.shape == (5, 6, 7)
    np.testing.assert_array_equal(loaded.array, volume)  # sorted by position, not file name
    assert loaded.geometry.spacing == pytest.approx((0.5, 0.75, 2.0))
    assert loaded.geometry.origin == pytest.approx((-10.0, 20.0, 30.0))


def test_dicom_folder_with_two_series_is_refused(tmp_path, dicom_series):
    volume = np.zeros((2, 4, 4), dtype=np.int16)
    dicom_series(tmp_path / "mixed", volume, series_uid="1.2.3.4")
    dicom_series(tmp_path / "mixed", volume + 1, series_uid="1.2.3.5", prefix="other")
    with pytest.raises(DataError, match="holds 2 DICOM series"):
        read_image(tmp_path / "mixed")
    with pytest.raises(DataError, match="no DICOM series found"):
        read_image(tmp_path)


def test_4d_image_is_refused(tmp_path):
    image = sitk.GetImageFromArray(np.zeros((2, 3, 4, 5), dtype=np.uint8), isVector=False)
    sitk.WriteImage(image, str(tmp_path / "t.nii.gz"))
    with pytest.raises(DataError, match=r"t.nii.gz is a 4D image \(size 5x4x3x2"):
        read_image(tmp_path / "t.nii.gz")


def test_errors_name_the_file(tmp_path):
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    with pytest.raises(DataError, match="cannot read image .*broken.png"):
        read_image(tmp_path / "broken.png")
    (tmp_path / "broken.nii.gz").write_bytes(b"\x1f\x8b garbage")
    with pytest.raises(DataError, match="cannot read .*broken.nii.gz"):
        read_image(tmp_path / "broken.nii.gz")
    with pytest.raises(DataError, match="file not found: .*missing.mha"):
        read_image(tmp_path / "missing.mha")
    (tmp_path / "x.niigz").write_bytes(b"")
    with pytest.raises(DataError, match=r"unsupported file type '.niigz'; did you mean .nii"):
        read_image(tmp_path / "x.niigz")


def test_writer_refuses_silent_loss(tmp_path):
    with pytest.raises(DataError, match="cannot store spacing"):
        write_image(tmp_path / "m.png", np.zeros((4, 4), np.uint8), Geometry((0.5, 0.5), (0, 0), (1, 0, 0, 1)))
    with pytest.raises(DataError, match="JPEG is lossy"):
        write_image(tmp_path / "m.jpg", np.zeros((4, 4), np.uint8))
    with pytest.raises(DataError, match="cannot store float32 values in m.png"):
        write_image(tmp_path / "m.png", np.full((4, 4), 0.5, np.float32))
    assert not list(tmp_path.iterdir())
    write_image(tmp_path / "m.png", np.array([[0, 300]], dtype=np.int64))  # fits uint16
    assert read_image(tmp_path / "m.png").array.tolist() == [[0, 300]]


def test_extension_of():
    assert extension_of("a/b/CASE_0000.nii.gz") == ".nii.gz"
    assert extension_of("X.PNG") == ".png"


def test_real_prostate_png(prostate_dir):
    loaded = read_image(prostate_dir / "masks/BIDMC05_32.png", role="mask")
    assert loaded.array.shape == (384, 384) and loaded.array.dtype == np.uint8
    assert set(np.unique(loaded.array)) <= {0, 254, 255}
    image = read_image(prostate_dir / "images/patient5/study5/volumn5/BIDMC05_32.png")
    assert image.array.shape == (384, 384)


def test_real_mni_volume():
    loaded = read_image(mni_template("gm"))
    assert loaded.array.shape == (189, 233, 197)  # [z, y, x]; x = 197 columns
    assert loaded.geometry.spacing == pytest.approx((1.0, 1.0, 1.0))
    # the nilearn copy stores probabilities as uint8 0..255 (0.5 -> 128)
    assert loaded.array.dtype == np.uint8 and loaded.array.max() == 255
    assert loaded.geometry.origin == pytest.approx((98.0, 134.0, -72.0))


def test_nifti_nan_is_refused_not_read_as_zero(tmp_path):
    # ITK 5's NIfTI reader turns NaN into 0; the reader must refuse instead.
    volume = np.ones((2, 3, 4), dtype=np.float32)
    volume[0, 0, 0], volume[1, 2, 3] = np.nan, np.inf
    for name in ("nan.nii.gz", "nan.nii"):
        write_image(tmp_path / name, volume, GEOMETRY_3D)
        with pytest.raises(DataError, match=rf"{name}: 2 NaN or infinite value\(s\) stored in the file"):
            read_image(tmp_path / name)
    write_image(tmp_path / "nan.mha", volume, GEOMETRY_3D)  # MetaImage keeps NaN as NaN: refused too
    with pytest.raises(DataError, match=r"nan.mha: 2 NaN or infinite value\(s\) of 24; replace them"):
        read_image(tmp_path / "nan.mha")
