"""`samtune predict --out-file/--overlay-file` (what `samtune segment` runs): flag refusals,
before any model loads or anything is written."""

import numpy as np
from PIL import Image


def test_out_file_flag_refusals(refused, tmp_path):
    image = tmp_path / "a.png"
    Image.fromarray(np.zeros((16, 16), np.uint8)).save(image)
    base = ["predict", image, "--model", "tiny_vit_test", "--box", 1, 1, 8, 8]
    cases = [
        (["--out", tmp_path / "o", "--out-file", tmp_path / "m.png"], ["--out DIR or --out-file FILE, not both"]),
        ([], ["give --out DIR", "--out-file FILE"]),
        (["--out", tmp_path / "o", "--overlay-file", tmp_path / "p.png"], ["--overlay-file goes with --out-file"]),
        (["--out-file", tmp_path / "m.png", "--overlay"], ["with --out-file give --overlay-file"]),
        (["--out-file", tmp_path / "m.nii.gz"], [str(tmp_path / "m.nii.gz"), "a.png is a 2D image", ".png"]),
        (["--out-file", tmp_path / "m.png", "--overlay-file", tmp_path / "m.png"], ["--out-file and --overlay-file are both"]),
    ]
    for extra, names in cases:
        refused([*base, *extra], watch=[tmp_path], names=names)
    refused(["predict", image, image, "--model", "tiny_vit_test", "--box", 1, 1, 8, 8, "--out-file", tmp_path / "m.png"],
            watch=[tmp_path], names=["names one label file but 2 inputs"])
