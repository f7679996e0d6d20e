"""nnU-Net's own planning and preprocessing, run for real on a samtune export (issue 15).

The parity check: samtune's U-Net plan (`samtune.models.unet_plan`) and the plan nnU-Net
writes for the same 384 px prostate slices agree on depth, strides, kernels and features.
"""

import json
from pathlib import Path

import pytest

from samtune.data.dataset import SliceDataset, SliceDatasetConfig
from samtune.data.nnunet_export import export_nnunet
from samtune.data.sources import load_source
from samtune.models.unet_plan import plan_from_dataset
from samtune.study.nnunet_engine import plan_and_preprocess

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
LIST = DATA / "MRI-Prostate" / "train_5shot.csv"


def test_nnunet_plans_and_preprocesses_the_export_like_samtunes_unet_plan(tmp_path):
    pytest.importorskip("nnunetv2")
    export = export_nnunet(LIST, 4, "Prostate", tmp_path / "nnUNet_raw", root=DATA)
    plans_file = plan_and_preprocess(export.folder, tmp_path, "2d", log=tmp_path / "nnunet.log")
    plans = json.loads(plans_file.read_text())
    arch = plans["configurations"]["2d"]["architecture"]["arch_kwargs"]
    assert "3d_fullres" not in plans["configurations"]  # 2D images: nnU-Net plans 2d only
    preprocessed = sorted(p.name for p in (plans_file.parent / "nnUNetPlans_2d").glob("*_seg.b2nd"))
    assert len(preprocessed) == 5  # one preprocessed label array per case

    source = load_source(LIST, root=DATA)
    ours = plan_from_dataset(SliceDataset(source, SliceDatasetConfig(256, "minmax"), train=False))
    assert [list(s) for s in arch["strides"]] == ours.strides
    assert [list(k) for k in arch["kernel_sizes"]] == ours.kernel_sizes
    assert list(arch["features_per_stage"]) == ours.filters
    assert list(plans["configurations"]["2d"]["patch_size"]) == [ours.image_size] * 2
