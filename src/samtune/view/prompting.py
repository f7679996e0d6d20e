"""Prompting from the page: a model's mask for a slice, with the slice's embedding cached.

The image encoder is the expensive part (LiteMedSAM about 1.4 s per slice on 2 CPU
cores); the prompt encoder and mask decoder take milliseconds. So the first prompt on a
slice encodes it, and every further click on that slice reuses the cached embedding
(``EMBEDDINGS`` most recently used slices kept). The intensity range is the whole
volume's, as `samtune predict` uses, so a slice looks the same to the model here and there.
3D propagation is `Predictor.propagate`, the path of `samtune predict`.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np

from samtune.errors import UserError
from samtune.view.volumes import OpenCase

if TYPE_CHECKING:  # torch is imported on the first prompt only: the page opens without it
    from samtune.inference.predictor import Predictor

EMBEDDINGS = 16


def load_predictor(run: str | Path | None, model: str | None, checkpoint: str | Path | None = None,
                   device: str = "cpu") -> "Predictor":
    """A prompted predictor from a run (refused if it segments automatically) or a registered model."""
    from samtune.inference.predictor import Predictor

    if run is not None:
        predictor = Predictor.from_run(run, device=device)
        if predictor.mode != "prompted":
            raise UserError(f"{run} was trained to segment automatically and cannot be prompted; "
                            "drop --run to view it, or prompt with --model lite_medsam")
        return predictor
    return Predictor.from_model(model or "lite_medsam", checkpoint=checkpoint, device=device)


class PromptEngine:
    """Masks for prompts on slices of open cases; the predictor is loaded on first use."""

    def __init__(self, loader: "Callable[[], Predictor] | None", description: str) -> None:
        self._loader = loader
        self.description = description  # e.g. "lite_medsam (zero-shot)" for the page header
        self._predictor: "Predictor | None" = None
        self._lock = threading.Lock()  # one model call at a time: torch already uses every core
        self._embeddings: OrderedDict[tuple, tuple] = OrderedDict()
        self._ranges: dict[str, tuple[float, float]] = {}
        self.last_timing: dict[str, float] = {}

    @property
    def available(self) -> bool:
        return self._loader is not None

    def predictor(self) -> "Predictor":
        if self._loader is None:
            raise UserError("no model to prompt: start samtune view with --run RUN or --model NAME")
        if self._predictor is None:
            self._predictor = self._loader()
        return self._predictor

    def _value_range(self, opened: OpenCase, predictor: Predictor) -> tuple[float, float]:
        name = opened.case.name
        if name not in self._ranges:
            self._ranges[name] = predictor.value_range(opened.image.array)
        return self._ranges[name]

    def mask(self, opened: OpenCase, axis: int, index: int, box: Sequence[float] | None = None,
             points: Sequence[Sequence[float]] | None = None, labels: Sequence[int] | None = None) -> np.ndarray:
        """0/1 mask [rows, cols] of the slice for a box and/or points (slice pixels, x = column)."""
        from samtune.inference.prompted import check_prompts

        with self._lock:
            predictor = self.predictor()
            image = opened.prompt_image(axis, index)
            check_prompts(image.shape[:2], tuple(box) if box is not None else None, points)
            key = (opened.case.name, axis, index)
            started = time.perf_counter()
            cached = key in self._embeddings
            if cached:
                self._embeddings.move_to_end(key)
            else:
                embeddings, frames = predictor.encode_images([image], self._value_range(opened, predictor))
                self._embeddings[key] = (embeddings, frames[0])
                while len(self._embeddings) > EMBEDDINGS:
                    self._embeddings.popitem(last=False)
            encoded = time.perf_counter()
            embedding, frame = self._embeddings[key]
            logits = predictor.prompt_logits(embedding, frame, box, points, labels)
            done = time.perf_counter()
            self.last_timing = {"encode_s": encoded - started, "decode_s": done - encoded, "cached": cached}
            return (logits > 0).numpy().astype(np.uint8)

    def propagate(self, opened: OpenCase, axis: int, index: int, box=None, points=None, labels=None):
        """`Predictor.propagate` from a prompt on one slice; returns its `PropagationResult`."""
        if opened.is_2d:
            raise UserError(f"{opened.case.name} is a 2D image: there is nothing to propagate through")
        with self._lock:
            return self.predictor().propagate(opened.prompt_volume(), index, box=box, axis=axis,
                                              points=points, point_labels=labels)
