"""When propagation should stop: per-slice signals and the rule that reads them.

Given a box, SAM nearly always finds *something* inside it, so "the mask disappeared" never
fires and a propagated mask runs to the volume's edge. Each propagated slice is therefore
described by signals computed without ground truth:

- ``area``: predicted pixels;
- ``iou``: SAM's own predicted IoU for the mask (its IoU head);
- ``stability``: pixels with logit > +1 over pixels with logit > -1 (SAM's stability
  score with offset 1): a real boundary is sharp, a guess inside a box is not;
- ``growth``: area over the previous kept slice's area;
- ``overlap``: IoU of the mask with the previous kept slice's mask, in plane (how far the
  object moved or changed shape between neighbouring slices);
- ``contrast``: distance of the mean normalised intensity inside the mask from the prompted
  slice's, in units of the prompted slice's intensity spread inside its mask;
- ``similarity``: cosine similarity of the mean image embedding under the mask with the
  prompted slice's (the encoder's notion of "the same tissue").

`StopRule` names a bound for each; a slice that breaks any enabled bound ends propagation
in its direction and is not kept. The default was chosen by measurement on real CT, MR
and MNI volumes (BENCHMARKS.md, "3D propagation stopping rule", benchmarks/bench_propagation.py).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F

from samtune.errors import UserError

STABILITY_OFFSET = 1.0  # logits, as SAM's automatic mask generator


@dataclass(frozen=True)
class SliceSignals:
    """What propagation knows about one predicted slice (module docstring)."""

    area: int
    iou: float
    stability: float
    growth: float
    overlap: float
    contrast: float
    similarity: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


@dataclass(frozen=True)
class StopRule:
    """Bounds on `SliceSignals`; None disables a bound. A slice breaking one is dropped and
    propagation stops in that direction.

    Attributes:
        min_area: pixels; fewer means the object has disappeared.
        min_iou: SAM's predicted IoU below this stops.
        min_stability: stability score below this stops.
        max_growth: area more than this many times the previous slice's stops (a leak into
            a neighbour is a sudden growth).
        min_overlap: in-plane IoU with the previous slice's mask below this stops.
        max_contrast: mean intensity further than this many spreads from the prompted
            slice's stops.
        min_similarity: embedding cosine similarity to the prompted slice below this stops.
    """

    min_area: int = 10
    min_iou: float | None = None
    min_stability: float | None = None
    max_growth: float | None = None
    min_overlap: float | None = None
    max_contrast: float | None = None
    min_similarity: float | None = None

    def __post_init__(self) -> None:
        if self.min_area < 1:
            raise UserError(f"stop rule: min_area must be >= 1 pixel, got {self.min_area}")
        for name in ("min_iou", "min_stability", "min_overlap", "min_similarity"):
            value = getattr(self, name)
            if value is not None and not -1.0 <= value <= 1.0:
                raise UserError(f"stop rule: {name} must be within [-1, 1], got {value}")
        for name in ("max_growth", "max_contrast"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise UserError(f"stop rule: {name} must be > 0, got {value}")

    def broken(self, signals: SliceSignals) -> str | None:
        """The first bound `signals` breaks, as ``"name=value"``, or None when the slice is kept."""
        checks = (
            ("area", signals.area < self.min_area),
            ("iou", self.min_iou is not None and signals.iou < self.min_iou),
            ("stability", self.min_stability is not None and signals.stability < self.min_stability),
            ("growth", self.max_growth is not None and signals.growth > self.max_growth),
            ("overlap", self.min_overlap is not None and signals.overlap < self.min_overlap),
            ("contrast", self.max_contrast is not None and signals.contrast > self.max_contrast),
            ("similarity", self.min_similarity is not None and signals.similarity < self.min_similarity),
        )
        for name, failed in checks:
            if failed:
                return f"{name}={getattr(signals, name):.3g}"
        return None


# What today's rule was before issue 17: only the disappearing object stops propagation.
AREA_ONLY = StopRule()
NEVER = StopRule(min_area=1)  # record a whole trajectory (benchmarks): stops only on an empty mask


@dataclass
class Reference:
    """The prompted slice's mask statistics that later slices are compared with."""

    mean: float  # mean normalised intensity inside the mask
    spread: float  # its standard deviation (floored, so a flat region does not divide by 0)
    embedding: torch.Tensor  # [C] mean embedding under the mask


def masked_embedding(embedding: torch.Tensor, mask_model_frame: torch.Tensor) -> torch.Tensor:
    """Mean of embedding [1, C, h, w] weighted by a [S, S] 0/1 mask in the model frame -> [C]."""
    grid = (embedding.shape[-2], embedding.shape[-1])  # (h, w)
    weights = F.adaptive_avg_pool2d(mask_model_frame[None, None].float(), grid)[0, 0]
    total = weights.sum()
    if total <= 0:
        return torch.zeros(embedding.shape[1])
    return (embedding[0].float().cpu() * weights).sum(dim=(1, 2)) / total


def reference_of(image01: np.ndarray, mask: np.ndarray, embedding_vector: torch.Tensor) -> Reference:
    """`Reference` of the prompted slice: ``image01`` [H, W] scaled to [0, 1], ``mask`` [H, W]."""
    values = image01[mask]
    if values.size == 0:
        return Reference(0.0, 1.0, embedding_vector)
    return Reference(float(values.mean()), max(float(values.std()), 0.02), embedding_vector)


def signals_of(
    logits: torch.Tensor,
    iou: float,
    mask: np.ndarray,
    previous: np.ndarray,
    image01: np.ndarray,
    embedding_vector: torch.Tensor,
    reference: Reference,
) -> SliceSignals:
    """`SliceSignals` of a slice: logits [H, W] (original frame), its (cleaned) 0/1 mask,
    the previous kept slice's mask, the slice scaled to [0, 1] and the masked embedding."""
    area = int(mask.sum())
    high = int((logits > STABILITY_OFFSET).sum())
    low = int((logits > -STABILITY_OFFSET).sum())
    previous_area = int(previous.sum())
    union = int((mask | previous).sum())
    mean = float(image01[mask].mean()) if area else 0.0
    similarity = float(F.cosine_similarity(embedding_vector[None], reference.embedding[None]).item()) if area else 0.0
    return SliceSignals(
        area=area,
        iou=float(iou),
        stability=high / low if low else 0.0,
        growth=area / previous_area if previous_area else float("inf"),
        overlap=int((mask & previous).sum()) / union if union else 0.0,
        contrast=abs(mean - reference.mean) / reference.spread,
        similarity=similarity,
    )
