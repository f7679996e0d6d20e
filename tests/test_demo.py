"""The embedded demo: real brain MRI, real LiteMedSAM weights, a real improvement."""

import json

import numpy as np
from PIL import Image

import yaml

from samtune.demo import REPORT_SLICES, SELECT_SLICES, TRAIN_SLICES, run_demo


def test_demo_fine_tuning_beats_zero_shot_on_white_matter(tmp_path):
    result = run_demo(tmp_path / "demo", tissue="wm")
    assert len(result.zero_shot) == len(result.fine_tuned) == len(REPORT_SLICES)
    # zero-shot LiteMedSAM with a box is poor on white matter (~0.5); the issue asks +0.15
    assert result.fine_tuned_mean >= result.zero_shot_mean + 0.15, (result.zero_shot, result.fine_tuned)
    assert result.fine_tuned_mean >= 0.7
    # The checkpoint is chosen on slices that are neither trained on nor reported (issue 12, item 5).
    assert not set(SELECT_SLICES) & set(REPORT_SLICES) and not set(TRAIN_SLICES) & set(REPORT_SLICES)
    config = yaml.safe_load((tmp_path / "demo" / "run" / "config.yaml").read_text())
    assert config["data"]["val"].endswith("select")
    assert sorted(p.name for p in (tmp_path / "demo" / "data" / "report" / "images").iterdir()) == [
        f"mni152_z{z:03d}.png" for z in REPORT_SLICES]
    picture = np.asarray(Image.open(tmp_path / "demo" / "overlays" / f"mni152_z{REPORT_SLICES[0]:03d}.png"))
    # three titled panels side by side above a legend row (960 x 488 px at the default size)
    assert picture.ndim == 3 and picture.shape[1] > 1.8 * picture.shape[0]
    assert (tmp_path / "demo" / "run" / "curves.png").is_file()
    assert "McConnell Brain Imaging Centre" in (tmp_path / "demo" / "data" / "NOTICE-MNI152.txt").read_text()
    summary = json.loads((tmp_path / "demo" / "run" / "summary.json").read_text())
    assert summary["embedding_cache"] is True and summary["steps"] == 100
