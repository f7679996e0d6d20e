"""ONNX export of a `Predictor`: the image encoder and the prompt decoder as two graphs.

An export directory holds

- ``encoder.onnx``: ``images`` [B, 3, S, S] (normalised, resized and padded as
  `samtune.data.preprocess.prepare_image` makes them) -> ``embeddings`` [B, C, h, w];
- ``decoder.onnx``: the prompt encoder and the mask decoder. Inputs (B prompts, each with
  its own embedding row; N prompt points, both dynamic):
  ``embeddings`` [B, C, h, w]; ``point_coords`` [B, N, 2] (x, y) model-frame pixels;
  ``point_labels`` [B, N] float: 1 object point, 0 background point, 2 / 3 the top-left /
  bottom-right corner of a box, -1 padding; ``mask_input`` [B, 1, 4h, 4w] logits of a
  previous pass and ``has_mask_input`` [B] (1 uses it, 0 ignores it). Outputs
  ``masks`` [B, T, 4h, 4w] logits of ALL T = num_multimask_outputs + 1 mask tokens and
  ``iou`` [B, T]: token 0 is the single-mask output, tokens 1.. the multi-mask (class)
  outputs, so one graph serves prompted and automatic runs. Boxes are two points, so any
  number of boxes and points fits the same graph (SAM's own ONNX convention);
- ``manifest.json``: what a predictor needs besides the graphs (normalisation, input
  size, classes, mode, windows) and sha256 checksums of the source weights and of each
  graph, so that a graph from another export is refused at load time.

The legacy TorchScript exporter (``dynamo=False``) is used: it needs neither onnxscript
nor the onnx package for models under 2 GB.
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path
from typing import TYPE_CHECKING, cast

import torch
from torch import Tensor, nn

from samtune.atomic import atomic_path
from samtune.models.sam import Sam

if TYPE_CHECKING:
    from samtune.inference.predictor import Predictor

MANIFEST = "manifest.json"
ENCODER_FILE = "encoder.onnx"
DECODER_FILE = "decoder.onnx"
FORMAT = "samtune-onnx"
FORMAT_VERSION = 1
OPSET = 17


class DecoderGraph(nn.Module):
    """Prompt encoder + mask decoder with fixed-shape tensor inputs (see the module doc).

    Computes exactly what `PromptEncoder.forward` and `MaskDecoder.predict_masks` compute
    for the same tokens: the caller lays out points, box corners and the padding point in
    the order the torch prompt encoder uses (points first, then box corners).
    """

    def __init__(self, sam: Sam) -> None:
        super().__init__()
        self.prompt_encoder = sam.prompt_encoder
        self.mask_decoder = sam.mask_decoder

    def forward(self, embeddings: Tensor, point_coords: Tensor, point_labels: Tensor,
                mask_input: Tensor, has_mask_input: Tensor) -> tuple[Tensor, Tensor]:
        encoder = self.prompt_encoder
        labels = point_labels[..., None]
        tokens = encoder.pe_layer.forward_with_coords(point_coords + 0.5, encoder.input_image_size)
        tokens = torch.where(labels == -1, encoder.not_a_point_embed.weight, tokens)
        for label in range(len(encoder.point_embeddings)):  # 0 bg, 1 fg, 2/3 box corners
            tokens = tokens + (labels == label).to(tokens.dtype) * encoder.point_embedding(label)
        has_mask = has_mask_input.reshape(-1, 1, 1, 1)
        dense = (has_mask * encoder.mask_downscaling(mask_input)
                 + (1 - has_mask) * encoder.no_mask_embed.weight.reshape(1, -1, 1, 1))
        return self.mask_decoder.predict_masks(embeddings, encoder.get_dense_pe(), tokens, dense)


def weights_sha256(model: nn.Module) -> str:
    """sha256 over the state dict (names, dtypes, shapes and bytes, in key order)."""
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)};".encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def example_inputs(sam: Sam, batch: int = 2, points: int = 3) -> dict[str, Tensor]:
    """Decoder inputs of the right shapes (used to trace the graph and to test it)."""
    channels, (h, w) = sam.mask_decoder.transformer_dim, sam.prompt_encoder.image_embedding_size
    size = sam.image_size
    return {
        "embeddings": torch.randn(batch, channels, h, w),
        "point_coords": torch.rand(batch, points, 2) * size,
        "point_labels": torch.tensor([[1.0, 2.0, 3.0][:points]] * batch)
        if points <= 3 else torch.ones(batch, points),
        "mask_input": torch.zeros(batch, 1, 4 * h, 4 * w),
        "has_mask_input": torch.zeros(batch),
    }


def graph_bytes(sam: Sam) -> tuple[bytes, bytes]:
    """(encoder, decoder) ONNX graphs of a `Sam`, serialised, on the CPU in fp32."""
    import warnings

    sam = sam.float().cpu().eval()
    encoder_buffer, decoder_buffer = io.BytesIO(), io.BytesIO()
    images = torch.zeros(1, 3, sam.image_size, sam.image_size)
    inputs = example_inputs(sam)
    # The two type: ignore[arg-type] below: torch's hint for `f` names paths only, while the
    # legacy exporter also writes to a file object such as this BytesIO.
    with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
        warnings.simplefilter("ignore")  # tracer warnings about Python ints: checked by the parity test
        torch.onnx.export(
            sam.image_encoder, (images,), encoder_buffer, dynamo=False, opset_version=OPSET,  # type: ignore[arg-type]
            input_names=["images"], output_names=["embeddings"],
            dynamic_axes={"images": {0: "batch"}, "embeddings": {0: "batch"}},
        )
        torch.onnx.export(
            DecoderGraph(sam), tuple(inputs.values()), decoder_buffer, dynamo=False, opset_version=OPSET,  # type: ignore[arg-type]
            input_names=list(inputs), output_names=["masks", "iou"],
            dynamic_axes={"embeddings": {0: "batch"}, "point_coords": {0: "batch", 1: "points"},
                          "point_labels": {0: "batch", 1: "points"}, "mask_input": {0: "batch"},
                          "has_mask_input": {0: "batch"}, "masks": {0: "batch"}, "iou": {0: "batch"}},
        )
    return encoder_buffer.getvalue(), decoder_buffer.getvalue()


def manifest_for(predictor: Predictor, source: str, weights_digest: str,
                 encoder: bytes, decoder: bytes) -> dict:
    """The manifest of an export (see the module doc)."""
    model = cast(Sam, predictor.model)  # a torch-backed SAM predictor (see export_onnx)
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "mode": predictor.mode,
        "classes": list(predictor.class_names),
        "prompt_kind": predictor.prompt_kind,
        "image_size": int(model.image_size),
        "normalization": model.normalization,
        "window": list(predictor.window) if predictor.window else None,
        "percentiles": list(predictor.percentiles) if predictor.percentiles else None,
        "axis": predictor.axis,
        "channels": list(predictor.channels) if predictor.channels else None,
        "embedding_shape": [int(model.mask_decoder.transformer_dim),
                            *map(int, model.prompt_encoder.image_embedding_size)],
        "num_mask_outputs": int(model.num_mask_outputs),
        "source": {"name": source, "weights_sha256": weights_digest},
        "opset": OPSET,
        "graphs": {
            "encoder": {"file": ENCODER_FILE, "sha256": hashlib.sha256(encoder).hexdigest()},
            "decoder": {"file": DECODER_FILE, "sha256": hashlib.sha256(decoder).hexdigest()},
        },
    }


def export_onnx(predictor: Predictor, out_dir: str | Path, source: str, overwrite: bool = False) -> dict:
    """Write encoder.onnx, decoder.onnx and manifest.json of a torch `Predictor` into `out_dir`.

    Args:
        predictor: a torch-backed predictor (from a run or a registered model).
        out_dir: the export folder (created; its three files replaced only with `overwrite`).
        source: what was exported (run directory or model name), recorded in the manifest.

    Returns:
        the manifest written.
    """
    from samtune.outputs import check_output_file, check_output_folder

    out_dir = Path(out_dir)
    check_output_folder(out_dir, overwrite=overwrite, flag="--onnx")
    for name in (ENCODER_FILE, DECODER_FILE, MANIFEST):
        check_output_file(out_dir / name, overwrite=overwrite, flag="--onnx")
    sam = cast(Sam, predictor.model)  # a torch-backed SAM predictor (see Args)
    encoder, decoder = graph_bytes(sam)
    manifest = manifest_for(predictor, source, weights_sha256(sam), encoder, decoder)
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, payload in ((ENCODER_FILE, encoder), (DECODER_FILE, decoder)):
        with atomic_path(out_dir / name) as tmp:
            Path(tmp).write_bytes(payload)
    with atomic_path(out_dir / MANIFEST) as tmp:  # last: a folder with a manifest is complete
        Path(tmp).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest
