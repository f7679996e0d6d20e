"""`samtune nnunet export`: real sources to an nnU-Net v2 raw dataset that nnU-Net's own
integrity check accepts (issue 15). The check needs the `nnunet` extra."""

import json
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from PIL import Image

from samtune.cli.main import main
from samtune.data.nnunet_check import verify_with_nnunet
from samtune.errors import UserError

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
PROSTATE = DATA / "MRI-Prostate"


def test_prostate_slices_export_with_zones_and_pass_nnunets_check(tmp_path, capsys):
    pytest.importorskip("nnunetv2")
    raw = tmp_path / "nnUNet_raw"
    assert main(["nnunet", "export", str(PROSTATE / "train_5shot.csv"), "--root", str(DATA), "--id", "4",
                 "--name", "Prostate", "--labels", "central=254,peripheral=255", "--out", str(raw), "--check"]) == 0
    assert "integrity check passed" in capsys.readouterr().out
    folder = raw / "Dataset004_Prostate"
    meta = json.loads((folder / "dataset.json").read_text())
    assert meta["labels"] == {"background": 0, "central": 1, "peripheral": 2}
    assert meta["numTraining"] == 5 and meta["file_ending"] == ".nii.gz" and meta["channel_names"] == {"0": "image"}
    # pixels and the label map: stored 254 -> 1, 255 -> 2, everything else 0
    image = sitk.GetArrayFromImage(sitk.ReadImage(str(folder / "imagesTr" / "UCL29_7_0000.nii.gz")))
    label = sitk.GetArrayFromImage(sitk.ReadImage(str(folder / "labelsTr" / "UCL29_7.nii.gz")))
    source_image = np.asarray(Image.open(PROSTATE / "images/patient108/study108/volumn108/UCL29_7.png"))
    stored = np.asarray(Image.open(PROSTATE / "masks" / "UCL29_7.png"))
    gray = source_image if source_image.ndim == 2 else source_image[..., 0]
    np.testing.assert_array_equal(image, gray)
    np.testing.assert_array_equal(label, (stored == 254) * 1 + (stored == 255) * 2)
    # nnU-Net's check is real: an undeclared label value makes it fail
    broken = sitk.GetImageFromArray((label * 0 + 3).astype(np.uint8))
    sitk.WriteImage(broken, str(folder / "labelsTr" / "UCL29_7.nii.gz"))
    with pytest.raises(UserError, match="integrity check failed"):
        verify_with_nnunet(folder)


def test_volume_source_keeps_geometry_and_passes_nnunets_check(tmp_path, capsys):
    pytest.importorskip("nnunetv2")
    rng = np.random.default_rng(0)
    for case in ("a", "b"):
        volume = rng.normal(100, 20, (12, 40, 48)).astype(np.float32)
        mask = np.zeros(volume.shape, np.uint8)
        mask[3:9, 10:30, 12:40] = 7
        for name, array in ((f"{case}.nii.gz", volume), (f"{case}_seg.nii.gz", mask)):
            image = sitk.GetImageFromArray(array)
            image.SetSpacing((0.7, 0.8, 3.0))
            image.SetOrigin((-10.0, 5.0, 2.5))
            image.SetDirection((0, 1, 0, 1, 0, 0, 0, 0, -1))
            sitk.WriteImage(image, str(tmp_path / name))
    (tmp_path / "list.csv").write_text("a.nii.gz,a_seg.nii.gz\nb.nii.gz,b_seg.nii.gz\n")
    raw = tmp_path / "raw"
    assert main(["nnunet", "export", str(tmp_path / "list.csv"), "--root", str(tmp_path), "--id", "12",
                 "--name", "Vols", "--channel-names", "MRI", "--out", str(raw), "--check"]) == 0
    folder = raw / "Dataset012_Vols"
    out = sitk.ReadImage(str(folder / "imagesTr" / "a_0000.nii.gz"))
    assert out.GetSpacing() == pytest.approx((0.7, 0.8, 3.0))
    assert out.GetOrigin() == pytest.approx((-10.0, 5.0, 2.5))
    assert out.GetDirection() == pytest.approx((0, 1, 0, 1, 0, 0, 0, 0, -1))
    label = sitk.GetArrayFromImage(sitk.ReadImage(str(folder / "labelsTr" / "a.nii.gz")))
    assert label.sum() == 6 * 20 * 28  # stored 7 -> class 1
    assert json.loads((folder / "dataset.json").read_text())["channel_names"] == {"0": "MRI"}
    # exporting the same source again changes nothing
    assert main(["nnunet", "export", str(tmp_path / "list.csv"), "--root", str(tmp_path), "--id", "12",
                 "--name", "Vols", "--channel-names", "MRI", "--out", str(raw)]) == 0
    assert "already up to date" in capsys.readouterr().out
