"""ONNX export and the onnxruntime backend against torch, on real LiteMedSAM weights and real images.

LiteMedSAM is exported once for the module. Parity: on a real prostate slice the two ONNX
graphs give the torch fp32 embeddings and mask logits within 1e-4 (measured: embeddings
2.4e-6, logits 5e-5 of logits up to 34). Agreement: labels from the two backends on three
prostate slices (box prompts from the masks) and on an MNI T1 slab (automatic mode: the
argmax of the three multi-mask outputs) overlap with Dice >= 0.99 (measured 1.0).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

pytest.importorskip("onnxruntime")

from samtune.assets import mni_template  # noqa: E402
from samtune.data.readers import read_image  # noqa: E402
from samtune.inference.onnx_export import MANIFEST, export_onnx  # noqa: E402
from samtune.inference.predictor import Predictor  # noqa: E402

pytestmark = pytest.mark.slow
PROSTATE = Path(__file__).parents[2].parent / "shared/data/MRI-Prostate"
TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def backends(tmp_path_factory):
    threads = torch.get_num_threads()
    torch.set_num_threads(2)  # the real model: use both cores (tiny-model tests use one)
    try:
        torch_predictor = Predictor.from_model("lite_medsam")
        folder = tmp_path_factory.mktemp("onnx") / "lite_medsam"
        manifest = export_onnx(torch_predictor, folder, "lite_medsam")
        yield torch_predictor, Predictor.from_onnx(folder, threads=2), manifest, folder
    finally:
        torch.set_num_threads(threads)


@pytest.fixture
def two_threads():
    torch.set_num_threads(2)


def prostate_cases(count: int) -> list[tuple[np.ndarray, np.ndarray]]:
    rows = (PROSTATE / "val_5shot.csv").read_text().split()[:count]
    cases = []
    for row in rows:
        image, mask = row.split(",")
        cases.append((np.asarray(Image.open(PROSTATE.parent / image)),
                      np.asarray(Image.open(PROSTATE.parent / mask.lstrip("/"))) > 0))
    return cases


def tight_box(mask: np.ndarray) -> tuple[float, float, float, float]:
    rows, cols = np.nonzero(mask)
    return float(cols.min()), float(rows.min()), float(cols.max()), float(rows.max())


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2.0 * float((a & b).sum()) / max(float(a.sum() + b.sum()), 1.0)


def assert_mni_slab_agrees(reference: Predictor, other: Predictor) -> None:
    """Automatic labels of 3 axial MNI T1 slices, 12 mm apart: every structure of over 100
    pixels in `reference`'s labels (there must be one) overlaps `other`'s with Dice >= 0.99."""
    from dataclasses import replace

    slab = read_image(mni_template("t1")).array[85:110:12]
    expected, found = (replace(p, mode="automatic").predict_volume(slab).array for p in (reference, other))
    assert expected.shape == slab.shape
    present = [label for label in np.unique(expected) if label > 0 and (expected == label).sum() > 100]
    assert present  # the multi-mask argmax labels real structures
    for label in present:
        assert dice(found == label, expected == label) >= 0.99, label


def test_manifest_describes_the_model(backends):
    _, _, manifest, _ = backends
    assert (manifest["mode"], manifest["image_size"], manifest["normalization"]) == ("prompted", 256, "minmax")
    assert manifest["embedding_shape"] == [256, 64, 64] and manifest["num_mask_outputs"] == 3
    assert len(manifest["source"]["weights_sha256"]) == 64


@torch.inference_mode()
def test_graphs_match_torch_fp32_on_a_prostate_slice(backends, two_threads):
    torch_predictor, onnx_predictor, _, _ = backends
    image, mask = prostate_cases(1)[0]
    assert image.shape == (384, 384)
    reference, frames = torch_predictor.encode_images([image])
    embeddings, _ = onnx_predictor.encode_images([image])
    assert embeddings.shape == (1, 256, 64, 64)
    assert (embeddings - reference).abs().max().item() < TOLERANCE
    box = tight_box(mask)
    centre = [[(box[0] + box[2]) / 2, (box[1] + box[3]) / 2]]
    prompts = [dict(box=box), dict(pts=centre), dict(box=box, pts=[*centre, [5.0, 5.0]], labels=[1, 0])]
    for prompt in prompts:  # end to end: each backend's own embedding and decoder
        expected = torch_predictor.prompt_logits(reference, frames[0], **prompt)
        found = onnx_predictor.prompt_logits(embeddings, frames[0], **prompt)
        assert expected.abs().max().item() > 5  # real logits, not a degenerate output
        assert (found - expected).abs().max().item() < TOLERANCE, prompt
    # Dynamic batch and number of prompts, with a mask prompt; the multi-mask outputs.
    boxes = torch.tensor([[10.0, 20.0, 200.0, 220.0], [30.0, 40.0, 100.0, 120.0], [0.0, 0.0, 255.0, 255.0]])
    masks = torch.randn(3, 1, 256, 256, generator=torch.Generator().manual_seed(0)) * 5
    for kwargs in (dict(boxes=boxes, mask_inputs=masks), dict(boxes=boxes[:2], multimask_output=True),
                   dict(points=(boxes[:, None, :2] + 20, torch.ones(3, 1, dtype=torch.int64)))):
        expected, expected_iou = torch_predictor.model.decode(reference, **kwargs)
        found, found_iou = onnx_predictor.model.decode(reference, **kwargs)
        assert found.shape == expected.shape
        assert (found - expected).abs().max().item() < TOLERANCE
        assert (found_iou - expected_iou).abs().max().item() < TOLERANCE


def test_backends_agree_on_prostate_slices(backends, two_threads):
    torch_predictor, onnx_predictor, _, _ = backends
    for image, mask in prostate_cases(3):
        box = tight_box(mask)
        expected = torch_predictor.predict_image(image, box=box).astype(bool)
        found = onnx_predictor.predict_image(image, box=box).astype(bool)
        assert expected.sum() > 500  # the gland is found
        assert dice(found, expected) >= 0.99


def test_backends_agree_on_an_mni_subvolume_automatically(backends, two_threads):
    torch_predictor, onnx_predictor, _, _ = backends
    assert_mni_slab_agrees(torch_predictor, onnx_predictor)


def test_export_refuses_to_replace_without_overwrite(backends, tmp_path):
    torch_predictor, _, _, _ = backends
    folder = tmp_path / "export"
    folder.mkdir()
    (folder / MANIFEST).write_text("{}")
    from samtune.errors import UserError

    with pytest.raises(UserError, match="already exists"):
        export_onnx(torch_predictor, folder, "lite_medsam")
    assert (folder / MANIFEST).read_text() == "{}"


def test_int8_agrees_with_fp32_on_prostate_and_mni(backends, two_threads):
    """int8 (weight-only MatMul quantisation) against torch fp32: labels on the prostate
    slices (measured: Dice >= 0.9907 against fp32 on each of the five val slices) and on the
    MNI slab (measured 1.0)."""

    from samtune.inference.backends import int8_encoder
    from samtune.inference.predictor import Predictor

    torch_predictor, _, _, folder = backends
    int8 = Predictor.from_onnx(folder, threads=2, encoder_file=int8_encoder(folder))
    for image, mask in prostate_cases(3):
        box = tight_box(mask)
        expected = torch_predictor.predict_image(image, box=box).astype(bool)
        found = int8.predict_image(image, box=box).astype(bool)
        assert dice(found, expected) >= 0.985
        assert dice(found, mask) >= dice(expected, mask) - 0.01  # no worse against the truth
    assert_mni_slab_agrees(torch_predictor, int8)
