"""int8 on onnxruntime (what is quantised) and automatic volumes that skip repeated slices (issue 16).

Tiny random models: the point here is the graph surgery and the bookkeeping; the accuracy
of int8 on real LiteMedSAM weights is asserted in test_onnx_backend.py.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from tests.helpers.tiny_sam import build  # noqa: E402

from samtune.inference.predictor import Predictor  # noqa: E402
from samtune.inference.volume import unique_slices  # noqa: E402
from samtune.data.geometry import Geometry, LoadedImage  # noqa: E402


class CountingModel:
    """Counts the slices sent to the encoder of a wrapped model."""

    def __init__(self, model) -> None:
        self.model, self.encoded = model, 0

    def __getattr__(self, name):
        return getattr(self.model, name)

    def encode(self, images):
        self.encoded += images.shape[0]
        return self.model.encode(images)


def test_unique_slices_finds_exact_repeats_only():
    volume = np.zeros((6, 8, 8), np.uint8)
    volume[1] = 3          # constant but another value: predicted, not assumed background
    volume[2, 4, 4] = 9
    volume[4] = volume[2]  # an exact repeat of slice 2
    firsts, copies = unique_slices(LoadedImage(volume, Geometry.identity(3)), 0)
    assert firsts == [0, 1, 2]
    assert copies == [(3, 0), (4, 2), (5, 0)]


@pytest.mark.parametrize("batch_size", [1, 2])
def test_repeated_slices_are_encoded_once_and_get_the_same_labels(one_thread, batch_size):
    model = CountingModel(build("tiny_vit", seed=3))
    predictor = Predictor(model, "automatic", ("a", "b", "c"))
    rng = np.random.default_rng(0)
    distinct = rng.integers(0, 255, (3, 24, 20)).astype(np.uint8)
    volume = np.stack([np.zeros((24, 20), np.uint8), distinct[0], distinct[1], np.zeros((24, 20), np.uint8),
                       distinct[0], distinct[2], np.zeros((24, 20), np.uint8)])
    labels = predictor.predict_volume(volume, batch_size=batch_size).array
    assert model.encoded == 4  # zeros, three distinct slices; the 3 repeats copy
    value_range = predictor.value_range(volume)  # one intensity scale per volume, as predict_volume
    expected = [predictor.predict_images([s], value_range=value_range)[0] for s in volume]
    assert np.array_equal(labels, np.stack(expected))
    assert len(np.unique(labels)) > 1  # not a trivially constant output


def test_int8_quantises_weight_matmuls_only(one_thread, tmp_path, monkeypatch):
    pytest.importorskip("onnxruntime")
    onnx = pytest.importorskip("onnx")
    from samtune.inference.quantize import INT8_ENCODER_FILE, weight_matmul_split

    monkeypatch.setenv("SAMTUNE_CACHE", str(tmp_path / "cache"))
    torch_predictor = Predictor(build("tiny_vit", seed=0), "prompted")
    fp32 = torch_predictor.with_backend("onnxruntime", "fp32", "tiny")
    int8 = torch_predictor.with_backend("auto", "int8", "tiny")
    [folder] = (tmp_path / "cache" / "onnx").iterdir()
    fp32_graph = onnx.load(str(folder / "encoder.onnx"))
    int8_graph = onnx.load(str(folder / INT8_ENCODER_FILE))
    with_weight, activations = weight_matmul_split(fp32_graph)
    assert with_weight and activations  # the tiny TinyViT has linear layers and attention
    kinds = [node.op_type for node in int8_graph.graph.node]
    assert kinds.count("MatMulInteger") == len(with_weight)
    assert kinds.count("MatMul") == len(activations)  # q @ k and softmax @ v stay fp32
    assert kinds.count("Conv") == [n.op_type for n in fp32_graph.graph.node].count("Conv")
    image = (np.arange(32 * 32).reshape(32, 32) % 251).astype(np.uint8)
    a = fp32.predict_images([image], boxes=[(4, 4, 24, 24)])[0]
    b = int8.predict_images([image], boxes=[(4, 4, 24, 24)])[0]
    assert a.shape == b.shape == (32, 32)
    embeddings = [p.encode_images([image])[0] for p in (fp32, int8)]
    difference = (embeddings[0] - embeddings[1]).abs().max().item()
    assert 0 < difference < 0.1 * embeddings[0].abs().max().item()  # int8 changed it, a little
    assert replace(int8, mode="automatic").predict_volume(np.stack([image, image])).array.shape == (2, 32, 32)
