"""`Predictor`: a trained run (or a zero-shot model) applied to images and volumes.

Coordinates of prompts are pixels of the ORIGINAL image, x = column, y = row; outputs are
label arrays in the original pixel grid (0 = background, k = class k of the run's
label map; prompted predictions are 0/1).

    >>> predictor = Predictor.from_run("runs/prostate")          # or .from_model("lite_medsam")
    >>> labels = predictor.predict_image(png_array)               # automatic run: [H, W]
    >>> labels = predictor.predict_volume(read_image("ct.nii.gz"))  # LoadedImage, same geometry
    >>> result = predictor.propagate(read_image("mr.nii.gz"), slice_index=90, box=(40, 50, 120, 160))

Volumes are handled in `samtune.inference.volume` (slice-by-slice, batched, streamed) and
`samtune.inference.propagation` (3D prompted propagation from one box).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence, cast

import numpy as np
import torch

from samtune.data.geometry import LoadedImage
from samtune.data.preprocess import ResizePad, intensity_range, prepare_image
from samtune.errors import UserError
from samtune.inference.prompted import check_prompts
from samtune.models.interface import SegmentationModel
from samtune.runs import RunDir


@dataclass
class Predictor:
    model: SegmentationModel  # a torch Sam / UNetSegmenter, or an ONNX / bf16 backend (inference.backends)
    mode: str  # "automatic" (no prompt, one channel per class) or "prompted"
    class_names: tuple[str, ...] = ("foreground",)
    window: tuple[float, float] | None = None
    percentiles: tuple[float, float] | None = None
    device: torch.device = torch.device("cpu")
    prompt_kind: str = "box"  # prompted runs: what they were trained with (box, point, hybrid)
    axis: int = 0  # volume axis the run was trained on (array order z, y, x)
    channels: tuple[int, ...] | None = None  # image channels the run was trained on; None: all

    @classmethod
    def from_model(cls, name: str, checkpoint: str | Path | None = None, device: str = "cpu") -> Predictor:
        """Zero-shot prompted predictor from a registered model (packaged or given weights)."""
        from samtune.models.registry import create_model

        model = create_model(name, checkpoint=checkpoint, pretrained=True, device=device).eval()
        return cls(cast(SegmentationModel, model), "prompted", device=torch.device(device))  # registered models fit it

    @classmethod
    def from_run(cls, run_dir: str | Path | RunDir, device: str = "cpu") -> Predictor:
        """The trained model of a run directory (`samtune.runs.RunDir`), checked first: a
        missing or damaged file is one UserError naming it."""
        from samtune.data.intensity import parse_window

        run = (run_dir if isinstance(run_dir, RunDir) else RunDir.open(run_dir)).check()
        model = run.load_model(device)
        s = run.settings
        return cls(model, s.mode, run.labels, parse_window(s.window), s.percentiles, torch.device(device),
                   prompt_kind=s.prompt, axis=s.axis, channels=s.channels)

    # ------------------------------------------------- backends (issue 16)
    @classmethod
    def from_onnx(cls, export_dir: str | Path, threads: int | None = None, encoder_file: str | None = None,
                  backend: str = "onnxruntime", precision: str = "fp32") -> Predictor:
        """A predictor on ONNX Runtime (or ``backend`` "openvino") from a `samtune export --onnx`
        folder (manifest checked); ``encoder_file`` picks another encoder graph in it (the int8
        one); ``precision`` is checked against the hardware and backend (`resolve_precision`)."""
        from samtune.inference.backends import ENCODER_FILE, open_onnx_export
        from samtune.inference.precision import resolve_precision

        resolved = resolve_precision(precision, "cpu", backend)
        model, fields = open_onnx_export(export_dir, threads, encoder_file or ENCODER_FILE, backend, resolved)
        return cls(model, **fields)

    def with_backend(self, backend: str = "auto", precision: str = "auto", source: str = "model") -> Predictor:
        """This predictor on `backend` (torch | onnxruntime | openvino | auto) at `precision` (auto | fp32 | bf16 | int8).

        See `samtune.inference.backends.with_backend`; bf16 is refused where not native, int8 off onnxruntime.
        """
        from samtune.inference.backends import with_backend

        return with_backend(self, backend, precision, source)

    # ----------------------------------------------------------------- images
    def value_range(self, array: np.ndarray) -> tuple[float, float]:
        """Intensity range used to normalise `array` (an image or a whole volume)."""
        return intensity_range(array, self.window, self.percentiles,
                               keep_uint8=self.model.normalization == "imagenet")

    @torch.inference_mode()
    def predict_images(
        self,
        images: Sequence[np.ndarray],
        boxes: Sequence[Sequence[float] | None] | None = None,
        points: Sequence[Sequence[Sequence[float]] | None] | None = None,
        point_labels: Sequence[Sequence[int] | None] | None = None,
        value_range: tuple[float, float] | None = None,
    ) -> list[np.ndarray]:
        """Labels [H, W] uint8 for a batch of 2D images ([H, W] or [H, W, C]) in one forward.

        Prompted mode needs a box and/or points per image (original pixels); automatic
        mode takes none. `value_range` fixes the intensity scale (pass a volume's range
        for its slices); by default each image uses its own.
        """
        count = len(images)
        boxes = list(boxes) if boxes is not None else [None] * count
        points = list(points) if points is not None else [None] * count
        point_labels = list(point_labels) if point_labels is not None else [None] * count
        if self.mode == "prompted":
            for image, box, pts in zip(images, boxes, points):
                check_prompts(image.shape[:2], tuple(box) if box is not None else None, pts)
        elif any(b is not None for b in boxes) or any(p is not None and len(p) for p in points):
            raise UserError("this run segments automatically and takes no prompts; drop the box/points")
        embeddings, frames = self.encode_images(images, value_range)
        if self.mode == "automatic":
            low_res, _ = self.model.decode(embeddings, multimask_output=True)
            outputs = []
            for logits, frame in zip(low_res, frames):
                # numpy's argmax over the class axis: 7x faster than torch's strided argmax(0) (issue 16)
                outputs.append(np.argmax(frame.logits_to_original(logits.float().cpu()).numpy(), axis=0)
                               .astype(np.uint8))
            return outputs
        return [(self.prompt_logits(embeddings[i : i + 1], frames[i], boxes[i], points[i], point_labels[i]) > 0)
                .numpy().astype(np.uint8) for i in range(count)]

    @torch.inference_mode()
    def encode_images(
        self, images: Sequence[np.ndarray], value_range: tuple[float, float] | None = None
    ) -> tuple[torch.Tensor, list[ResizePad]]:
        """One encoder forward for 2D images: (embeddings [B, C, h, w] on the device, frames).

        Only this batch is preprocessed and held, so callers bound memory by the batch size.
        """
        tensors, frames = [], []
        for image in images:
            rng = value_range if value_range is not None else self.value_range(np.asarray(image))
            tensor, frame = prepare_image(np.asarray(image), self.model.image_size, self.model.normalization,
                                          value_range=rng)
            tensors.append(tensor)
            frames.append(frame)
        return self.model.encode(torch.stack(tensors).to(self.device)), frames

    @torch.inference_mode()
    def prompt_logits(self, embedding: torch.Tensor, frame: ResizePad, box=None, pts=None,
                      labels=None) -> torch.Tensor:
        """Mask logits [H, W] (original frame, CPU float) for one prompt on one embedding [1, C, h, w].

        The prompt is not checked here (callers with user prompts use `check_prompts`).
        """
        return self.prompt_decode(embedding, frame, box, pts, labels)[0]

    @torch.inference_mode()
    def prompt_decode(self, embedding: torch.Tensor, frame: ResizePad, box=None, pts=None, labels=None,
                      mask_input: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, float]:
        """One prompt on one embedding [1, C, h, w], optionally with a dense mask prompt
        ``mask_input`` [1, 1, 4h, 4w] (low-resolution logits of a previous pass, model frame).

        Returns (logits [H, W] original frame on the CPU, low-resolution logits [1, 1, 4h, 4w]
        on the device, SAM's predicted IoU of the mask).
        """
        point_arg = box_arg = None
        if pts is not None and len(pts):
            labels = list(labels) if labels is not None else [1] * len(pts)
            coords = torch.as_tensor(frame.points(np.asarray(pts, dtype=np.float32)), dtype=torch.float32)
            point_arg = (coords[None].to(self.device), torch.as_tensor(labels, dtype=torch.int64)[None].to(self.device))
        if box is not None:
            box_arg = torch.as_tensor(frame.boxes(np.asarray(box, dtype=np.float32)), dtype=torch.float32)
            box_arg = box_arg[None].to(self.device)
        low_res, iou = self.model.decode(embedding, points=point_arg, boxes=box_arg, mask_inputs=mask_input,
                                         multimask_output=False)
        return frame.logits_to_original(low_res[0, 0].float().cpu()), low_res[:, :1], float(iou[0, 0])

    def predict_image(self, image: np.ndarray, box=None, points=None, point_labels=None,
                      value_range=None) -> np.ndarray:
        """Labels [H, W] for one 2D image (see `predict_images`)."""
        return self.predict_images([image], [box], [points], [point_labels], value_range)[0]

    # ---------------------------------------------------------------- volumes
    def predict_volume(self, volume: LoadedImage | np.ndarray, axis: int = 0,
                       batch_size: int | None = None) -> LoadedImage:
        """Automatic runs: labels of every slice along `axis`, restacked with the source geometry.

        See `samtune.inference.volume.predict_volume`.
        """
        from samtune.inference.volume import predict_volume

        return predict_volume(self, volume, axis=axis, batch_size=batch_size)

    def propagate(self, volume: LoadedImage | np.ndarray, slice_index: int | None = None, box=None, axis: int = 0,
                  points=None, point_labels=None, **options):
        """Prompted 3D segmentation from prompts on one or more slices, without ground truth.

        The one code path of the CLI, the Python API and the viewer: see
        `samtune.inference.propagation.propagate` (options: prompts, config, margin, min_area,
        max_slices, batch_size, mask_prompt, largest_component, stop); returns a `PropagationResult`.
        """
        from samtune.inference.propagation import propagate

        return propagate(self, volume, slice_index, box=box, axis=axis, points=points,
                         point_labels=point_labels, **options)
