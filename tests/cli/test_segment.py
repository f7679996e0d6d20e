"""Zero-shot prompted segmentation: real-data Dice, the CLI, and its errors."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from samtune.cli.main import main
from samtune.data.readers import read_image
from samtune.data.sources import load_source
from samtune.evaluation.metrics import overlap_metrics
from samtune.inference.predictor import Predictor

PROSTATE = Path(__file__).resolve().parents[3] / "shared" / "data" / "MRI-Prostate"


@pytest.fixture(scope="module")
def lite_medsam():
    return Predictor.from_model("lite_medsam")


def box_around(mask: np.ndarray, margin: int) -> tuple[float, float, float, float]:
    rows, cols = np.nonzero(mask)
    height, width = mask.shape
    return (float(max(cols.min() - margin, 0)), float(max(rows.min() - margin, 0)),
            float(min(cols.max() + 1 + margin, width)), float(min(rows.max() + 1 + margin, height)))


def test_lite_medsam_zero_shot_prostate_dice(lite_medsam):
    """Box = mask bounding box +-5 px, prostate = mask > 0, the 5 validation slices."""
    source = load_source(PROSTATE / "val_5shot.csv")
    assert len(source.cases) == 5
    scores = []
    for case in source.cases:
        image = read_image(case.images[0]).array
        truth = read_image(case.mask, role="mask").array > 0
        predicted = lite_medsam.predict_image(image, box=box_around(truth, 5))
        assert predicted.shape == truth.shape
        scores.append(overlap_metrics(predicted > 0, truth)[0])
    assert np.mean(scores) >= 0.93, scores


def test_segment_cli_writes_mask_and_overlay(tmp_path, capsys):
    source = load_source(PROSTATE / "val_5shot.csv")
    case = source.cases[0]
    truth = read_image(case.mask, role="mask").array > 0
    x0, y0, x1, y1 = box_around(truth, 5)
    out, overlay = tmp_path / "mask.png", tmp_path / "overlay.png"
    code = main(["segment", str(case.images[0]), "--box", str(x0), str(y0), str(x1), str(y1),
                 "--out", str(out), "--overlay", str(overlay)])
    assert code == 0
    mask = np.asarray(Image.open(out))
    assert mask.shape == truth.shape and set(np.unique(mask)) == {0, 1}  # as predict writes
    assert overlap_metrics(mask > 0, truth)[0] > 0.85
    picture = np.asarray(Image.open(overlay))  # a titled figure with the prompt box and a legend
    assert picture.ndim == 3 and picture.shape[0] > 200
    assert main(["segment", str(case.images[0]), "--box", "1", "1", "9", "9", "--out", str(out)]) == 2
    assert "exists; pass --overwrite" in capsys.readouterr().err


def test_segment_cli_on_a_nifti_volume(tmp_path, capsys):
    """As `predict --model`: prompted on --slice, propagated, written as NIfTI (segment wrote
    a PNG of the one slice before it became predict's alias)."""
    import SimpleITK as sitk

    from samtune.assets import mni_template

    t1 = read_image(mni_template("t1"))
    part = tmp_path / "t1_z88_92.nii.gz"  # 5 slices keep the propagation short
    sitk.WriteImage(sitk.GetImageFromArray(t1.array[88:93]), str(part))
    out = tmp_path / "wm.nii.gz"
    code = main(["segment", str(part), "--slice", "2", "--box", "40", "40", "160", "190",
                 "--point", "100", "110", "--out", str(out)])
    assert code == 0
    labels = read_image(out).array
    assert labels.shape == (5, 233, 197) and labels[2].sum() > 1000 and set(np.unique(labels)) == {0, 1}
    assert "propagated from slice 2" in capsys.readouterr().out
    assert main(["segment", str(part), "--slice", "2", "--box", "40", "40", "160", "190",
                 "--out", str(tmp_path / "wm.png")]) == 2
    assert "so its labels are written as .nii.gz" in capsys.readouterr().err


@pytest.mark.parametrize(
    "args, message",
    [
        (["--box", "0", "0", "500", "10"], "box (0, 0, 500, 10) is not inside the 384x384 image"),
        (["--box", "30", "30", "10", "40"], "is not inside the 384x384 image"),
        (["--point", "-3", "10"], "point (-3, 10) is outside the 384x384 image"),
        ([], "needs a prompt: give --box X0 Y0 X1 Y1 and/or --point X Y"),
        (["--box", "1", "1", "9", "9", "--model", "sam_vit_bb"], "unknown model 'sam_vit_bb'; did you mean sam_vit_b"),
        (["--box", "1", "1", "9", "9", "--model", "sam_vit_b"], "model 'sam_vit_b' needs a weights file"),
        (["--box", "1", "1", "9", "9", "--model", "lite_medsam", "--checkpoint", "/nonexistent/w.pth"],
         "checkpoint not found: /nonexistent/w.pth"),
        (["--box", "1", "1", "9", "9", "--slice", "3"], "is a 2D image; a slice index applies to volumes only"),
    ],
)
def test_segment_cli_bad_input_is_one_line_exit_2(tmp_path, capsys, args, message):
    image = sorted((PROSTATE / "images").rglob("*.png"))[0]
    code = main(["segment", str(image), *args, "--out", str(tmp_path / "m.png")])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "m.png").exists()


def test_segment_cli_unreadable_image(tmp_path, capsys):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    assert main(["segment", str(broken), "--box", "1", "1", "9", "9", "--out", str(tmp_path / "m.png")]) == 2
    assert str(broken) in capsys.readouterr().err


def test_segment_is_predict_with_model_byte_for_byte(tmp_path, monkeypatch, capsys):
    """`segment` is an alias: the same files (bytes) and the same messages as `predict --model`."""
    image = str(sorted((PROSTATE / "images").rglob("*.png"))[0])
    prompt = ["--box", "110", "120", "260", "250", "--point", "180", "190", "--negative-point", "20", "20"]
    commands = {"segment": ["segment", image, *prompt, "--out", "mask.png", "--overlay", "look.png"],
                "predict": ["predict", image, "--model", "lite_medsam", *prompt, "--out-file", "mask.png",
                            "--overlay-file", "look.png"]}
    written, said = {}, {}
    for name, argv in commands.items():
        (tmp_path / name).mkdir()
        monkeypatch.chdir(tmp_path / name)  # the same relative paths, so the messages can be equal
        assert main(argv) == 0
        said[name] = capsys.readouterr()
        written[name] = {f: (tmp_path / name / f).read_bytes() for f in ("mask.png", "look.png")}
        assert main([*argv, "--box", "0", "0", "999", "9", "--overwrite"]) == 2  # the same refusal too
        said[name + " refused"] = capsys.readouterr()
    assert written["segment"] == written["predict"]
    assert said["segment"] == said["predict"] and said["segment refused"] == said["predict refused"]
    mask = np.asarray(Image.open(tmp_path / "segment" / "mask.png"))
    assert set(np.unique(mask)) == {0, 1} and mask.sum() > 500  # a real object, not an empty mask
    assert "mask.png (384x384 image; labelled pixels: foreground" in said["segment"].out
    assert "is not inside the 384x384 image" in said["segment refused"].err
