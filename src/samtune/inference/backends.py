"""Inference backends behind a `Predictor`: torch (fp32 or bf16), ONNX Runtime and OpenVINO.

A `Predictor` only uses ``model.encode``, ``model.decode``, ``image_size``,
``normalization`` and ``num_mask_outputs``; `OnnxSam` and `Bf16Sam` provide the same
surface (`OpenVinoSam` runs the same ONNX graphs as `OnnxSam`), so the per-slice code
(volumes, propagation, evaluation) is shared by all backends.

`--backend auto` on a CPU picks bf16 where the CPU computes bf16 natively (the fastest paths
there whose labels match fp32): on OpenVINO when it is installed, else torch autocast; on
other CPUs, fp32 on ONNX Runtime when it is installed (it ran the LiteMedSAM encoder faster
than torch fp32 on the 2-core test machines), else torch (BENCHMARKS.md "CPU inference").
For a run or a registered model the ONNX graphs are exported once and kept in a cache
folder keyed by the weights' checksum (``$SAMTUNE_CACHE``, else ``~/.cache/samtune``).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import torch

from samtune.errors import UserError
from samtune.inference.onnx_export import (
    DECODER_FILE, ENCODER_FILE, FORMAT, FORMAT_VERSION, MANIFEST, export_onnx, weights_sha256,
)
from samtune.inference.precision import resolve_precision

if TYPE_CHECKING:
    from samtune.inference.predictor import Predictor
    from samtune.models.interface import SegmentationModel

BACKENDS = ("auto", "torch", "onnxruntime", "openvino")
INSTALL_HINT = "pip install 'samtune[onnx]'"
OPENVINO_HINT = "pip install 'samtune[openvino]'"


def onnxruntime_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("onnxruntime") is not None


def openvino_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("openvino") is not None


def _openvino():
    try:
        import openvino
    except ImportError:
        raise UserError(f"--backend openvino needs the openvino package: {OPENVINO_HINT}") from None
    return openvino


def _onnxruntime():
    try:
        import onnxruntime
    except ImportError:
        raise UserError(f"--backend onnxruntime needs the onnxruntime package: {INSTALL_HINT}") from None
    return onnxruntime


class OnnxSam:
    """`Sam`'s encode/decode on ONNX Runtime sessions (CPU).

    With T > 1 threads, a batch of several images is encoded slice-parallel: T images at
    a time, each on one core (a second encoder session of one intra-op thread, run from T
    Python threads; onnxruntime releases the GIL while it runs), instead of each image
    on T cores in turn. One image still runs on all T cores. ``slice_parallel=False``
    keeps the intra-op path for every batch.
    """

    def __init__(self, encoder_path: Path, decoder_path: Path, manifest: dict, threads: int | None = None,
                 slice_parallel: bool = True) -> None:
        ort = _onnxruntime()
        # As many threads as torch uses, so that backends compare on equal terms.
        self.threads = threads or torch.get_num_threads()
        providers = ["CPUExecutionProvider"]
        try:
            self.encoder = ort.InferenceSession(str(encoder_path), self._options(ort, self.threads), providers=providers)
            self.decoder = ort.InferenceSession(str(decoder_path), self._options(ort, self.threads), providers=providers)
            self.encoder_one_core = ort.InferenceSession(str(encoder_path), self._options(ort, 1), providers=providers) \
                if slice_parallel and self.threads > 1 else None
        except Exception as error:  # onnxruntime raises its own exception types
            raise UserError(f"{encoder_path.parent}: onnxruntime cannot load the graphs ({error}); "
                            "re-export them with samtune export --onnx") from None
        self._read_manifest(manifest)

    def _read_manifest(self, manifest: dict) -> None:
        self.image_size = int(manifest["image_size"])
        self.normalization = manifest["normalization"]
        self.num_mask_outputs = int(manifest["num_mask_outputs"])
        channels, h, w = manifest["embedding_shape"]
        self.embedding_shape = (int(channels), int(h), int(w))

    @staticmethod
    def _options(ort: Any, threads: int) -> Any:
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.log_severity_level = 3
        # onnxruntime's default, said outright: constant folding, GELU/LayerNorm/bias fusions
        # and the NCHWc convolution layout (the profile in BENCHMARKS.md ran at this level).
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        return options

    @property
    def preferred_batch(self) -> int:
        """Slices per `encode` call that keep every core busy: T when slice-parallel, else 1."""
        return self.threads if self.encoder_one_core is not None else 1

    def eval(self) -> OnnxSam:
        return self

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """[B, 3, S, S] -> [B, C, h, w] (CPU float32)."""
        array = np.ascontiguousarray(images.detach().cpu().float().numpy())
        if self.encoder_one_core is None or array.shape[0] < 2:
            return torch.from_numpy(self.encoder.run(None, {"images": array})[0])
        session = self.encoder_one_core
        with ThreadPoolExecutor(max_workers=min(self.threads, array.shape[0])) as pool:
            parts = list(pool.map(lambda image: session.run(None, {"images": image[None]})[0], array))
        return torch.from_numpy(np.concatenate(parts))

    def decode(self, embeddings: torch.Tensor, points=None, boxes=None, mask_inputs=None,
               multimask_output: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """Same arguments and outputs as `Sam.decode` (prompts in model-frame pixels)."""
        sizes = [embeddings.shape[0]]
        sizes += [points[0].shape[0]] if points is not None else []
        sizes += [boxes.shape[0]] if boxes is not None else []
        sizes += [mask_inputs.shape[0]] if mask_inputs is not None else []
        batch = max(sizes)
        coords, labels = [np.zeros((batch, 0, 2), np.float32)], [np.zeros((batch, 0), np.float32)]
        if points is not None:  # the torch prompt encoder's token order: points, then box corners
            coords.append(np.broadcast_to(points[0].cpu().float().numpy(), (batch, *points[0].shape[1:])))
            labels.append(np.broadcast_to(points[1].cpu().float().numpy(), (batch, points[1].shape[1])))
            if boxes is None:  # the padding point that stands in for a missing box
                coords.append(np.zeros((batch, 1, 2), np.float32))
                labels.append(np.full((batch, 1), -1.0, np.float32))
        if boxes is not None:
            corners = boxes.cpu().float().numpy().reshape(-1, 2, 2)
            coords.append(np.broadcast_to(corners, (batch, 2, 2)))
            labels.append(np.broadcast_to(np.array([[2.0, 3.0]], np.float32), (batch, 2)))
        _, h, w = self.embedding_shape
        if mask_inputs is None:
            mask = np.zeros((batch, 1, 4 * h, 4 * w), np.float32)
            has_mask = np.zeros(batch, np.float32)
        else:
            mask = np.broadcast_to(mask_inputs.cpu().float().numpy(), (batch, 1, 4 * h, 4 * w))
            has_mask = np.ones(batch, np.float32)
        feeds = {
            "embeddings": np.ascontiguousarray(np.broadcast_to(embeddings.cpu().float().numpy(),
                                                               (batch, *self.embedding_shape))),
            "point_coords": np.ascontiguousarray(np.concatenate(coords, axis=1), dtype=np.float32),
            "point_labels": np.ascontiguousarray(np.concatenate(labels, axis=1), dtype=np.float32),
            "mask_input": np.ascontiguousarray(mask), "has_mask_input": has_mask,
        }
        masks, iou = (torch.from_numpy(a) for a in self.decoder.run(None, feeds))
        selected = slice(1, None) if multimask_output else slice(0, 1)
        return masks[:, selected], iou[:, selected]


class _OpenVinoGraph:
    """An OpenVINO compiled model behind onnxruntime's ``run(None, feeds)`` call (outputs copied)."""

    def __init__(self, compiled: Any) -> None:
        self.compiled, self.request = compiled, compiled.create_infer_request()
        self.lock = threading.Lock()  # one infer request: one call at a time

    def run(self, _outputs: None, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        with self.lock:
            result = self.request.infer(feeds, share_outputs=False)
            return [result[output] for output in self.compiled.outputs]


class OpenVinoSam(OnnxSam):
    """`Sam`'s encode/decode on OpenVINO's CPU plugin, from the same ONNX export as `OnnxSam`.

    ``precision`` "bf16" runs the image encoder at OpenVINO's bf16 inference precision
    (native AVX512-BF16/AMX kernels; asked for only where the CPU has them, see
    `resolve_precision`); the prompt encoder and mask decoder, a few percent of the time,
    stay at fp32. "fp32" pins fp32 for both (OpenVINO would otherwise pick bf16 by itself
    on such a CPU). A batch of slices goes through the encoder as one call on all threads.
    """

    def __init__(self, encoder_path: Path, decoder_path: Path, manifest: dict, threads: int | None = None,
                 precision: str = "fp32") -> None:
        core = _openvino().Core()
        self.threads = threads or torch.get_num_threads()
        self.precision = precision

        def compile_graph(path: Path, hint: str) -> _OpenVinoGraph:
            # No pinning of threads to cores: on a 2-core machine busy with other work, pinned
            # threads waited 5-6 s per LiteMedSAM slice against 0.7-1.2 s unpinned, and on an
            # idle one pinning gained nothing measurable (0.35-0.38 s against 0.36-0.40 s).
            config = {"INFERENCE_PRECISION_HINT": hint, "INFERENCE_NUM_THREADS": self.threads,
                      "PERFORMANCE_HINT": "LATENCY", "ENABLE_CPU_PINNING": False}
            return _OpenVinoGraph(core.compile_model(str(path), "CPU", config))

        try:
            self.encoder = compile_graph(encoder_path, "bf16" if precision == "bf16" else "f32")
            self.decoder = compile_graph(decoder_path, "f32")
        except Exception as error:  # OpenVINO raises RuntimeError for graphs it cannot read
            raise UserError(f"{encoder_path.parent}: openvino cannot load the graphs ({error}); "
                            "re-export them with samtune export --onnx") from None
        self.encoder_one_core = None  # one call per batch: OpenVINO spreads it over the threads
        self._read_manifest(manifest)


class Bf16Sam:
    """A torch `Sam` run under bf16 autocast; outputs come back as float32."""

    def __init__(self, model: SegmentationModel, device: torch.device) -> None:
        self.model, self.device_type = model, torch.device(device).type
        self.image_size, self.normalization = model.image_size, model.normalization
        self.num_mask_outputs = model.num_mask_outputs

    def eval(self) -> Bf16Sam:
        return self

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        with torch.autocast(self.device_type, dtype=torch.bfloat16):
            return self.model.encode(images).float()

    def decode(self, embeddings: torch.Tensor, *args, **kwargs) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.autocast(self.device_type, dtype=torch.bfloat16):
            masks, iou = self.model.decode(embeddings, *args, **kwargs)
        return masks.float(), iou.float()


def read_manifest(export_dir: str | Path) -> dict:
    """The manifest of an ONNX export folder, checked against its graphs (one-line errors)."""
    export_dir = Path(export_dir)
    path = export_dir / MANIFEST
    if not export_dir.is_dir():
        raise UserError(f"--onnx {export_dir} is not a folder; export one with: samtune export RUN --onnx DIR")
    if not path.is_file():
        raise UserError(f"{export_dir} has no {MANIFEST}; it is not a samtune ONNX export "
                        "(make one with: samtune export RUN --onnx DIR)")
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise UserError(f"{path} is not readable JSON ({error}); re-export with samtune export --onnx") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise UserError(f"{path} is not a samtune ONNX manifest (format must be {FORMAT!r})")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise UserError(f"{path} has format_version {manifest.get('format_version')!r}; this samtune reads "
                        f"{FORMAT_VERSION}: re-export with samtune export --onnx")
    for role, name in (("encoder", ENCODER_FILE), ("decoder", DECODER_FILE)):
        graph = export_dir / name
        expected = manifest.get("graphs", {}).get(role, {}).get("sha256")
        if not graph.is_file():
            raise UserError(f"{graph} is missing; re-export with samtune export --onnx")
        found = hashlib.sha256(graph.read_bytes()).hexdigest()
        if found != expected:
            raise UserError(f"{graph} has sha256 {found[:12]}..., its manifest expects {str(expected)[:12]}...: "
                            "the graph comes from another export; re-export the folder with samtune export --onnx")
    return manifest


def open_onnx_export(export_dir: str | Path, threads: int | None = None, encoder_file: str = ENCODER_FILE,
                     backend: str = "onnxruntime", precision: str = "fp32") -> tuple[OnnxSam, dict[str, Any]]:
    """The ONNX Runtime (or OpenVINO) model of an export folder (see
    `samtune.inference.onnx_export`) and the `Predictor` fields its manifest records
    (`Predictor.from_onnx` builds the predictor).

    ``encoder_file``: the encoder graph to run (``encoder_int8.onnx`` for int8, made by
    `int8_encoder` next to the checked fp32 graph). ``precision``: "bf16" for OpenVINO's
    bf16 encoder (the caller checks that the CPU has native bf16, `resolve_precision`).
    """
    export_dir = Path(export_dir)
    _openvino() if backend == "openvino" else _onnxruntime()  # refuse before reading anything large
    manifest = read_manifest(export_dir)
    paths = (export_dir / encoder_file, export_dir / DECODER_FILE)
    model = OpenVinoSam(*paths, manifest, threads, precision) if backend == "openvino" \
        else OnnxSam(*paths, manifest, threads)
    tuple_or_none = lambda v: tuple(v) if v else None  # noqa: E731
    fields = {
        "mode": manifest["mode"], "class_names": tuple(manifest["classes"]),
        "window": tuple_or_none(manifest.get("window")), "percentiles": tuple_or_none(manifest.get("percentiles")),
        "device": torch.device("cpu"), "prompt_kind": manifest.get("prompt_kind", "box"),
        "axis": int(manifest.get("axis", 0)), "channels": tuple_or_none(manifest.get("channels")),
    }
    return model, fields


def cache_root() -> Path:
    return Path(os.environ.get("SAMTUNE_CACHE") or Path.home() / ".cache" / "samtune")


def cached_export(predictor: Predictor, source: str) -> Path:
    """The ONNX export of a torch predictor's weights, made once into the cache folder."""
    digest = weights_sha256(cast(torch.nn.Module, predictor.model))  # a torch-backed predictor
    key = hashlib.sha256(f"{digest}:{predictor.mode}:{FORMAT_VERSION}:{torch.__version__}".encode()).hexdigest()
    folder = cache_root() / "onnx" / key[:24]
    if (folder / MANIFEST).is_file():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}."))
    try:
        export_onnx(predictor, staging / "export", source)
        os.replace(staging / "export", folder)  # atomic: a cache folder is complete or absent
    except OSError:
        if not (folder / MANIFEST).is_file():  # another process did not win the race either
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder


def int8_encoder(folder: Path) -> str:
    """The int8 encoder of a cached export folder, quantised from its fp32 graph on first use."""
    from samtune.inference.quantize import INT8_ENCODER_FILE, quantize_encoder

    if not (folder / INT8_ENCODER_FILE).is_file():
        quantize_encoder(folder / ENCODER_FILE, folder / INT8_ENCODER_FILE)
    return INT8_ENCODER_FILE


def auto_backend(precision: str = "auto", flags: frozenset[str] | None = None) -> str:
    """What `--backend auto` runs a SAM model on the CPU with at `precision`: for bf16 (asked
    for, or what `auto` resolves to on a CPU with native bf16) OpenVINO where installed (faster
    than torch autocast, BENCHMARKS.md), else torch; onnxruntime for int8; else onnxruntime
    where installed (faster than torch fp32, BENCHMARKS.md), else torch."""
    if precision == "bf16" or (precision == "auto" and resolve_precision("auto", "cpu", "torch", flags) == "bf16"):
        return "openvino" if openvino_available() else "torch"
    if precision == "int8":
        return "onnxruntime"
    return "onnxruntime" if onnxruntime_available() else "torch"


def with_backend(predictor: Predictor, backend: str = "auto", precision: str = "auto", source: str = "model") -> Predictor:
    """`predictor` (torch, fp32) moved to `backend` at `precision` (see `resolve_precision`)."""
    if backend not in BACKENDS:
        raise UserError(f"--backend {backend!r}: choose one of {', '.join(BACKENDS)}")
    if not isinstance(predictor.model, torch.nn.Module):
        raise UserError("this predictor already runs on an exported graph; --backend applies to torch models")
    from samtune.models.sam import Sam

    is_sam = isinstance(predictor.model, Sam)
    if precision == "auto" and not is_sam:
        precision = "fp32"  # reduced precision by default was measured on SAM models only
    automatic = backend == "auto"
    if automatic:
        # The ONNX graphs are SAM's encoder and decoder; other models (the U-Net) stay on torch.
        on_cpu_sam = predictor.device.type == "cpu" and is_sam
        backend = auto_backend(precision) if on_cpu_sam else "torch"
    if backend in ("onnxruntime", "openvino"):
        _openvino() if backend == "openvino" else _onnxruntime()
        if predictor.device.type != "cpu":
            raise UserError(f"--backend {backend} runs on the CPU; drop --device {predictor.device}")
    resolved = resolve_precision(precision, predictor.device, backend)
    if backend in ("onnxruntime", "openvino"):
        try:
            folder = cached_export(predictor, source)
            if backend == "openvino":
                openvino_model, _ = open_onnx_export(folder, backend="openvino", precision=resolved)
                return replace(predictor, model=openvino_model)
        except Exception as error:  # noqa: BLE001 - auto must never fail where torch works
            if not automatic:
                if isinstance(error, UserError):
                    raise
                raise UserError(f"--backend {backend}: exporting {source} to ONNX failed "
                                f"({type(error).__name__}: {error}); use --backend torch") from error
            warnings.warn(f"--backend auto: {backend} failed ({type(error).__name__}: {error}); using torch",
                          stacklevel=2)
            return replace(predictor, model=Bf16Sam(predictor.model, predictor.device)) if resolved == "bf16" \
                else predictor
        encoder_file = ENCODER_FILE
        if resolved == "int8":
            try:
                encoder_file = int8_encoder(folder)
            except Exception as error:  # noqa: BLE001 - the fp32 graphs still work
                if precision == "int8":
                    raise UserError(f"--precision int8: quantising the encoder failed ({type(error).__name__}: "
                                    f"{error}); use --precision fp32") from error
                warnings.warn(f"--precision auto: int8 quantisation failed ({error}); using fp32", stacklevel=2)
        onnx_model, _ = open_onnx_export(folder, encoder_file=encoder_file)
        return replace(predictor, model=onnx_model)
    if resolved == "bf16":
        return replace(predictor, model=Bf16Sam(predictor.model, predictor.device))
    return predictor
