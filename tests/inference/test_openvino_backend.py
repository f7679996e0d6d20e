"""The OpenVINO backend: the same ONNX graphs as onnxruntime, run by OpenVINO's CPU plugin (issue 16).

fp32 parity with torch within 1e-4 on both tiny backbone families and on real LiteMedSAM
weights with a real prostate slice (measured on the prostate slice: embeddings 3e-6,
logits 6e-5); bf16 (only where the CPU has it natively) against torch fp32: labels on the
prostate val slices (measured Dice >= 0.996 against fp32, and within 0.0025 of fp32's Dice
against the truth on each) and on an MNI T1 slab in automatic mode.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

pytest.importorskip("openvino")

from samtune.inference.backends import open_onnx_export  # noqa: E402
from samtune.inference.onnx_export import export_onnx  # noqa: E402
from samtune.inference.precision import native_bf16  # noqa: E402
from samtune.inference.predictor import Predictor  # noqa: E402
from tests.helpers.tiny_sam import build  # noqa: E402
from tests.inference.test_onnx_backend import (  # noqa: E402
    assert_mni_slab_agrees, dice, prostate_cases, tight_box,
)

TOLERANCE = 1e-4
needs_bf16 = pytest.mark.skipif(not native_bf16("cpu"), reason="this CPU has no native bf16 (avx512_bf16/amx_bf16)")


@pytest.mark.parametrize("family", ["tiny_vit", "sam_vit"])
def test_tiny_graphs_on_openvino_match_torch(family, tmp_path, one_thread):
    torch_predictor = Predictor(build(family, seed=0), "prompted")
    export_onnx(torch_predictor, tmp_path / "export", f"{family}_test")
    openvino = Predictor.from_onnx(tmp_path / "export", threads=1, backend="openvino", precision="fp32")
    assert type(openvino.model).__name__ == "OpenVinoSam" and openvino.model.precision == "fp32"
    images = [(np.arange(50 * 40).reshape(50, 40) % 251).astype(np.uint8),
              (np.arange(50 * 40).reshape(50, 40) % 97).astype(np.uint8)]
    with torch.inference_mode():
        reference, frames = torch_predictor.encode_images(images)
        embeddings, _ = openvino.encode_images(images)  # a batch of 2 in one call
        assert embeddings.shape == reference.shape and reference.shape[0] == 2
        assert (embeddings - reference).abs().max().item() < TOLERANCE
        for prompt in (dict(box=(4, 4, 20, 30)), dict(pts=[[10, 12], [30, 40]], labels=[1, 0])):
            expected = torch_predictor.prompt_logits(reference[1:], frames[1], **prompt)
            found = openvino.prompt_logits(embeddings[1:], frames[1], **prompt)
            assert expected.abs().max().item() > 0.01
            assert (found - expected).abs().max().item() < TOLERANCE


def test_run_predicts_the_same_labels_on_openvino(tmp_path_factory, tmp_path, one_thread):
    """`predict --run RUN --backend openvino --precision fp32` and `predict --onnx DIR --backend
    openvino` give torch's labels on an automatic run."""
    from samtune.cli.main import main
    from tests.helpers.generated_data import write_disc_dataset
    from tests.helpers.trained_runs import trained_run

    run = trained_run("automatic", tmp_path_factory)
    assert main(["export", str(run), "--onnx", str(tmp_path / "onnx")]) == 0
    images = write_disc_dataset(tmp_path / "data", 2, seed=5) / "images"
    inputs = sorted(str(p) for p in images.glob("*.png"))
    outputs = {}
    for name, source in {"torch": ["--run", str(run), "--backend", "torch"],
                         "openvino": ["--run", str(run), "--backend", "openvino", "--precision", "fp32"],
                         "folder": ["--onnx", str(tmp_path / "onnx"), "--backend", "openvino", "--precision", "fp32"]
                         }.items():
        assert main(["predict", *inputs, *source, "--out", str(tmp_path / name)]) == 0
        outputs[name] = [np.asarray(Image.open(tmp_path / name / Path(p).name)) for p in inputs]
    assert any((labels > 0).any() for labels in outputs["torch"])  # the run labels something
    for name in ("openvino", "folder"):
        for found, expected in zip(outputs[name], outputs["torch"]):
            assert (found == expected).mean() >= 0.999, name


@pytest.fixture(scope="module")
def lite_medsam(tmp_path_factory):
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        torch_predictor = Predictor.from_model("lite_medsam")
        folder = tmp_path_factory.mktemp("onnx") / "lite_medsam"
        export_onnx(torch_predictor, folder, "lite_medsam")
        yield torch_predictor, folder
    finally:
        torch.set_num_threads(threads)


@pytest.mark.slow
@torch.inference_mode()
def test_lite_medsam_on_openvino_fp32_matches_torch(lite_medsam):
    torch_predictor, folder = lite_medsam
    openvino = Predictor.from_onnx(folder, threads=2, backend="openvino", precision="fp32")
    image, mask = prostate_cases(1)[0]
    reference, frames = torch_predictor.encode_images([image])
    embeddings, _ = openvino.encode_images([image])
    assert (embeddings - reference).abs().max().item() < TOLERANCE
    box = tight_box(mask)
    for prompt in (dict(box=box), dict(pts=[[(box[0] + box[2]) / 2, (box[1] + box[3]) / 2]])):
        expected = torch_predictor.prompt_logits(reference, frames[0], **prompt)
        found = openvino.prompt_logits(embeddings, frames[0], **prompt)
        assert expected.abs().max().item() > 5
        assert (found - expected).abs().max().item() < TOLERANCE, prompt


@pytest.mark.slow
@needs_bf16
def test_lite_medsam_on_openvino_bf16_keeps_the_labels(lite_medsam):
    torch_predictor, folder = lite_medsam
    bf16, _ = open_onnx_export(folder, threads=2, backend="openvino", precision="bf16")
    fast = replace(torch_predictor, model=bf16)
    for image, mask in prostate_cases(5):
        box = tight_box(mask)
        expected = torch_predictor.predict_image(image, box=box).astype(bool)
        found = fast.predict_image(image, box=box).astype(bool)
        assert dice(found, expected) >= 0.99
        assert dice(found, mask) >= dice(expected, mask) - 0.005
    assert_mni_slab_agrees(torch_predictor, fast)
