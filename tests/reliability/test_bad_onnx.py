"""Bad ONNX exports and backend choices: one line, exit 2, nothing written (issue 16)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from samtune.inference.onnx_export import DECODER_FILE, export_onnx
from samtune.inference.predictor import Predictor
from tests.helpers.tiny_sam import build


def tiny_export(folder: Path, seed: int) -> Path:
    export_onnx(Predictor(build("tiny_vit", seed=seed), "prompted"), folder, "tiny_vit_test")
    return folder


@pytest.fixture
def image(tmp_path) -> Path:
    path = tmp_path / "inputs" / "slice.png"
    path.parent.mkdir()
    Image.fromarray((np.arange(32 * 32).reshape(32, 32) % 251).astype(np.uint8)).save(path)
    return path


def predict_argv(image: Path, out: Path, *extra) -> list:
    return ["predict", image, "--box", 4, 4, 20, 20, "--out", out, *extra]


def test_onnx_folder_without_manifest(refused, tmp_path, image):
    pytest.importorskip("onnxruntime")
    folder = tmp_path / "not_an_export"
    folder.mkdir()
    (folder / "encoder.onnx").write_bytes(b"not a graph")
    message = refused(predict_argv(image, tmp_path / "out", "--onnx", folder), watch=[tmp_path],
                      names=[str(folder), "manifest.json"])
    assert "samtune export" in message


def test_onnx_folder_with_another_models_graph(refused, tmp_path, image, one_thread):
    pytest.importorskip("onnxruntime")
    mine, other = tiny_export(tmp_path / "mine", 0), tiny_export(tmp_path / "other", 1)
    shutil.copyfile(other / DECODER_FILE, mine / DECODER_FILE)
    refused(predict_argv(image, tmp_path / "out", "--onnx", mine), watch=[tmp_path],
            names=[str(mine / DECODER_FILE), "another export"])
    # The untouched export loads and predicts: the refusal is about the swapped graph.
    assert Predictor.from_onnx(other).predict_image(np.asarray(Image.open(image)), box=(4, 4, 20, 20)).shape == (32, 32)


def test_backend_onnxruntime_without_onnxruntime(refused, tmp_path, image, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime -> ImportError
    for extra in (["--model", "lite_medsam"], ["--onnx", tmp_path]):
        message = refused(predict_argv(image, tmp_path / "out", *extra, "--backend", "onnxruntime"), watch=[tmp_path],
                          names=["onnxruntime"])
        assert "samtune[onnx]" in message


def test_backend_openvino_without_openvino(refused, tmp_path, image, monkeypatch):
    monkeypatch.setitem(sys.modules, "openvino", None)  # import openvino -> ImportError
    for extra in (["--model", "lite_medsam"], ["--onnx", tmp_path]):
        message = refused(predict_argv(image, tmp_path / "out", *extra, "--backend", "openvino"), watch=[tmp_path],
                          names=["openvino"])
        assert "samtune[openvino]" in message


def test_bf16_refused_without_native_bf16(refused, tmp_path, image, monkeypatch):
    import samtune.inference.precision as precision

    monkeypatch.setattr(precision, "cpu_flags", lambda: frozenset({"avx2", "fma"}))
    for backend in ("torch", "openvino"):
        refused(["segment", image, "--box", 4, 4, 20, 20, "--out", tmp_path / "mask.png", "--precision", "bf16",
                 "--backend", backend], watch=[tmp_path], names=["--precision bf16", "avx512_bf16"])


def test_export_onnx_into_a_non_empty_folder(refused, tmp_path):
    folder = tmp_path / "export"
    folder.mkdir()
    (folder / "keep.txt").write_text("user data")
    refused(["export", "--model", "lite_medsam", "--onnx", folder], watch=[tmp_path], names=[str(folder)])


def test_onnx_backend_refuses_bf16(refused, tmp_path, image):
    pytest.importorskip("onnxruntime")
    refused(["segment", image, "--box", 4, 4, 20, 20, "--out", tmp_path / "mask.png", "--precision", "bf16",
             "--backend", "onnxruntime"], watch=[tmp_path], names=["--precision bf16", "onnxruntime"])


def test_int8_refused_on_torch(refused, tmp_path, image):
    refused(["segment", image, "--box", 4, 4, 20, 20, "--out", tmp_path / "mask.png", "--precision", "int8",
             "--backend", "torch"], watch=[tmp_path], names=["--precision int8", "onnxruntime"])


def test_int8_refused_with_an_onnx_folder(refused, tmp_path, image):
    pytest.importorskip("onnxruntime")
    folder = tiny_export(tmp_path / "export", 0)
    refused(predict_argv(image, tmp_path / "out", "--onnx", folder, "--precision", "int8"), watch=[tmp_path],
            names=["--precision int8", "--run"])


def test_precision_choices_refuse_int4(refused, tmp_path, image):
    refused(["segment", image, "--box", 4, 4, 20, 20, "--out", tmp_path / "mask.png", "--precision", "int4"],
            watch=[tmp_path], names=["--precision", "int4"])
