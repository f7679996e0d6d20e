"""ONNX export of both tiny backbone families: graphs match torch within 1e-4 at batch 1 and 2."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from samtune.inference.onnx_export import export_onnx
from samtune.inference.predictor import Predictor
from tests.helpers.tiny_sam import build

pytest.importorskip("onnxruntime")


@pytest.mark.parametrize("family", ["tiny_vit", "sam_vit"])
def test_tiny_export_matches_torch(family, tmp_path):
    torch_predictor = Predictor(build(family, seed=0), "prompted")
    export_onnx(torch_predictor, tmp_path / "export", f"{family}_test")
    onnx_predictor = Predictor.from_onnx(tmp_path / "export", threads=1)
    images = [(np.arange(50 * 40).reshape(50, 40) % 251).astype(np.uint8),
              (np.arange(50 * 40).reshape(50, 40) % 97).astype(np.uint8)]
    with torch.inference_mode():
        reference, frames = torch_predictor.encode_images(images)
        embeddings, _ = onnx_predictor.encode_images(images)
        assert embeddings.shape == reference.shape and reference.shape[0] == 2
        assert (embeddings - reference).abs().max().item() < 1e-4
        for prompt in (dict(box=(4, 4, 20, 30)), dict(pts=[[10, 12], [30, 40]], labels=[1, 0])):
            expected = torch_predictor.prompt_logits(reference[1:], frames[1], **prompt)
            found = onnx_predictor.prompt_logits(embeddings[1:], frames[1], **prompt)
            assert expected.abs().max().item() > 0.01
            assert (found - expected).abs().max().item() < 1e-4


def test_run_export_and_every_backend_predict_the_same_labels(tmp_path_factory, tmp_path, one_thread):
    """`samtune export RUN --onnx` on an automatic run; predict with torch, onnxruntime and the folder."""
    import json

    from tests.helpers.generated_data import write_disc_dataset
    from tests.helpers.trained_runs import trained_run

    from samtune.cli.main import main

    run = trained_run("automatic", tmp_path_factory)
    assert main(["export", str(run), "--onnx", str(tmp_path / "onnx")]) == 0
    manifest = json.loads((tmp_path / "onnx" / "manifest.json").read_text())
    assert manifest["mode"] == "automatic" and manifest["source"]["name"] == str(run)
    images = write_disc_dataset(tmp_path / "data", 2, seed=5) / "images"
    inputs = sorted(str(p) for p in images.glob("*.png"))
    outputs = {}
    for name, source in {"torch": ["--run", str(run), "--backend", "torch"],
                         "onnxruntime": ["--run", str(run), "--backend", "onnxruntime"],
                         "folder": ["--onnx", str(tmp_path / "onnx")]}.items():
        assert main(["predict", *inputs, *source, "--out", str(tmp_path / name)]) == 0
        outputs[name] = [np.asarray(Image.open(tmp_path / name / Path(p).name)) for p in inputs]
    for name in ("onnxruntime", "folder"):
        for found, expected in zip(outputs[name], outputs["torch"]):
            assert (found == expected).mean() >= 0.999, name


def test_auto_falls_back_to_torch_when_export_fails(monkeypatch):
    import samtune.inference.backends as backends
    from samtune.errors import UserError

    def broken(predictor, source):
        raise RuntimeError("unsupported operator")

    monkeypatch.setattr(backends, "cached_export", broken)
    predictor = Predictor(build("tiny_vit", seed=0), "prompted")
    with pytest.warns(UserWarning, match="using torch"):
        assert predictor.with_backend("auto", "fp32").model is predictor.model  # fp32: the onnxruntime path
    with pytest.raises(UserError, match="unsupported operator"):
        predictor.with_backend("onnxruntime", "fp32")


def test_auto_bf16_falls_back_to_torch_autocast_when_openvino_fails(monkeypatch):
    """Where auto picks OpenVINO bf16 and its graphs cannot be compiled, the prediction still
    runs, in bf16 on torch; asked for by name, the failure is one UserError."""
    import samtune.inference.backends as backends
    import samtune.inference.precision as precision
    from samtune.errors import UserError

    def broken(*args, **kwargs):
        raise UserError("openvino cannot load the graphs (unsupported operator)")

    monkeypatch.setattr(precision, "cpu_flags", lambda *args: frozenset({"avx2", "avx512_bf16"}))
    monkeypatch.setattr(backends, "openvino_available", lambda: True)
    monkeypatch.setattr(backends, "_openvino", lambda: None)
    monkeypatch.setattr(backends, "cached_export", lambda predictor, source: Path("unused"))
    monkeypatch.setattr(backends, "open_onnx_export", broken)
    predictor = Predictor(build("tiny_vit", seed=0), "prompted")
    with pytest.warns(UserWarning, match="openvino failed"):
        assert type(predictor.with_backend("auto", "auto").model).__name__ == "Bf16Sam"
    with pytest.raises(UserError, match="unsupported operator"):
        predictor.with_backend("openvino", "bf16")


@pytest.mark.parametrize("family", ["tiny_vit", "sam_vit"])
def test_slice_parallel_encoding_matches_one_session(family, tmp_path):
    """With 2 threads a batch is encoded one image per core; the embeddings are those of
    the 2-thread session running the whole batch, and a volume is fed 2 slices a call."""
    from samtune.inference.backends import open_onnx_export

    export_onnx(Predictor(build(family, seed=0), "automatic"), tmp_path / "export", f"{family}_test")
    parallel, _ = open_onnx_export(tmp_path / "export", threads=2)
    assert parallel.encoder_one_core is not None and parallel.preferred_batch == 2
    images = torch.randn(3, 3, parallel.image_size, parallel.image_size)
    whole = torch.from_numpy(parallel.encoder.run(None, {"images": images.numpy()})[0])
    split = parallel.encode(images)
    assert split.shape == whole.shape
    assert (split - whole).abs().max().item() < 1e-5
    assert (parallel.encode(images[:1]) - whole[:1]).abs().max().item() < 1e-5  # one image: intra-op session
    single, _ = open_onnx_export(tmp_path / "export", threads=1)
    assert single.encoder_one_core is None and single.preferred_batch == 1
