"""The U-Net baseline's nnU-Net-style plan, derived from real sources (issue 15).

Expected values are derived by hand in the comments from the planning rules in
`samtune.models.unet_plan` (stride 2 while the map stays >= 8 px and the axis' spacing is
< 2x the finest; kernel 3 once within 2x; features 32 doubling, capped at 512).
"""

from pathlib import Path

import numpy as np
import SimpleITK as sitk
import torch

from samtune.data.dataset import SliceDataset, SliceDatasetConfig
from samtune.data.sources import load_source
from samtune.models.registry import create_model
from samtune.models.unet_plan import plan_from_dataset, plan_unet

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"


def test_plan_of_the_384px_prostate_pngs():
    source = load_source(DATA / "MRI-Prostate" / "train_5shot.csv", root=DATA)
    dataset = SliceDataset(source, SliceDatasetConfig(image_size=256, normalization="minmax"), train=False)
    assert {r.slice_shape for r in dataset.refs} == {(384, 384)}
    plan = plan_from_dataset(dataset)
    # 384 -> 192 -> 96 -> 48 -> 24 -> 12 -> 6 (6 < 8 stops): six stride-2 levels on both axes,
    # isotropic pixels so every kernel is 3x3; 384 is divisible by 2**6 = 64.
    assert plan.image_size == 384
    assert plan.depth == 7
    assert plan.strides == [[1, 1]] + [[2, 2]] * 6
    assert plan.kernel_sizes == [[3, 3]] * 7
    assert plan.filters == [32, 64, 128, 256, 512, 512, 512]


def test_plan_of_an_anisotropic_volume_sliced_across_x(tmp_path):
    # (z, y, x) = (20, 128, 128) voxels of 4 x 1 x 1 mm, sliced across x (axis 2): slices are
    # (rows = z, cols = y) = (20, 128) px at (4, 1) mm; the frame side is the longest side, 128.
    volume = np.zeros((20, 128, 128), np.int16)
    volume[5:15, 40:90, 40:90] = 100
    for name, array in (("img.nii.gz", volume), ("seg.nii.gz", (volume > 0).astype(np.uint8))):
        image = sitk.GetImageFromArray(array)
        image.SetSpacing((1.0, 1.0, 4.0))  # ITK order x, y, z
        sitk.WriteImage(image, str(tmp_path / name))
    (tmp_path / "list.csv").write_text("img.nii.gz,seg.nii.gz\n")
    source = load_source(tmp_path / "list.csv", root=tmp_path)
    dataset = SliceDataset(source, SliceDatasetConfig(image_size=64, normalization="minmax", axis=2), train=False)
    assert {r.slice_shape for r in dataset.refs} == {(20, 128)}
    assert {r.pixel_spacing for r in dataset.refs} == {(4.0, 1.0)}
    plan = plan_from_dataset(dataset)
    # spacing (rows, cols), size (rows, cols):
    # 1: (4,1) rows 4x coarser -> pool cols only, kernel (1,3)   -> (4,2), (128,64)
    # 2: rows still 2x coarser -> pool cols only, kernel (1,3)   -> (4,4), (128,32)
    # 3-5: isotropic -> pool both, kernel (3,3)                 -> (32,4) after 5
    # 6: cols 4 < 8 -> rows only; 16 >= 12 so it pools (2,1)     -> (8,4)
    # 7: rows alone, 8 < 12 -> stop.  Bottleneck kernel (3,3).
    assert plan.strides == [[1, 1], [1, 2], [1, 2], [2, 2], [2, 2], [2, 2], [2, 1]]
    assert plan.kernel_sizes == [[1, 3], [1, 3], [3, 3], [3, 3], [3, 3], [3, 3], [3, 3]]
    assert plan.depth == 7 and plan.image_size == 128  # divisible by 2**4 (rows) and 2**5 (cols)


def test_frame_side_is_rounded_up_and_capped():
    # 200 px isotropic: 200 -> 100 -> 50 -> 25 -> 13 -> 7 (five pools), 200 rounded up to 224 (7 * 32).
    plan = plan_unet([(200, 150)], [(0.5, 0.5)])
    assert plan.strides == [[1, 1]] + [[2, 2]] * 5 and plan.image_size == 224
    assert plan_unet([(1000, 1000)], [(1.0, 1.0)]).image_size == 512  # capped (memory of one patch)


def test_planned_unet_runs_at_the_planned_size():
    plan = plan_unet([(20, 128)], [(4.0, 1.0)], base_filters=4)
    model = create_model("unet_test", num_multimask_outputs=3, **plan.overrides())
    logits = model.decode(model.encode(torch.zeros(1, 3, 128, 128)))[0]
    assert logits.shape == (1, 3, 128, 128)
    assert model.image_encoder.filters == [4, 8, 16, 32, 64, 128, 256]
