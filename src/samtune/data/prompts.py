"""Box and point prompts derived from a class map, reproducible with a seeded generator.

Coordinates follow SAM: a point is ``(x, y) = (column, row)`` in pixel indices of the
mask's frame, a box is ``(x0, y0, x1, y1)`` with the min/max pixel indices of the region
(MedSAM's convention), in the same frame as the mask they come from (the dataset passes
model-frame masks, so prompts come out in the model frame).

One prompt is made per *region*: with ``per="component"`` every connected component
(8-connectivity) of each class, largest first, up to ``max_regions`` per class; with
``per="class"`` the whole class. The study's defaults (`PromptConfig.study`): up to 3
largest regions, 5 positive points drawn from the innermost 10 % of each region (by
Euclidean distance to the region's border), each box side pushed out by up to 10 % of
the box's size.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import ndimage

from samtune.errors import ConfigError

PromptKind = Literal["box", "point", "hybrid"]
_EIGHT_CONNECTED = np.ones((3, 3), dtype=bool)


@dataclass(frozen=True)
class PromptConfig:
    """How prompts are drawn from a mask.

    Attributes:
        kind: "box", "point" or "hybrid" (box and points for each region).
        per: "component" (each connected region) or "class" (all of a class at once).
        max_regions: per class, keep the largest ``max_regions`` components (None: all).
        box_jitter: each box side moves outward by U(0, box_jitter) x the box's width
            (x sides) or height (y sides); 0 gives the tight box.
        num_points: positive points per region.
        inner_fraction: points come from the fraction of the region's pixels farthest from
            its border (1.0: anywhere in the region).
        num_negatives: negative points per region, drawn outside it (0: none).
    """

    kind: PromptKind = "box"
    per: Literal["component", "class"] = "component"
    max_regions: int | None = 3
    box_jitter: float = 0.1
    num_points: int = 5
    inner_fraction: float = 0.1
    num_negatives: int = 0

    def __post_init__(self) -> None:
        if self.kind not in ("box", "point", "hybrid"):
            raise ConfigError(f"prompt kind must be box, point or hybrid, got '{self.kind}'")
        if self.per not in ("component", "class"):
            raise ConfigError(f"prompt 'per' must be component or class, got '{self.per}'")
        if not 0.0 < self.inner_fraction <= 1.0:
            raise ConfigError(f"inner_fraction must be in (0, 1], got {self.inner_fraction}")
        if self.box_jitter < 0 or self.num_points < 0 or self.num_negatives < 0:
            raise ConfigError("box_jitter, num_points and num_negatives must be >= 0")
        if self.kind != "box" and self.num_points + self.num_negatives == 0:
            raise ConfigError(f"prompt kind '{self.kind}' needs num_points or num_negatives > 0")
        if self.max_regions is not None and self.max_regions < 1:
            raise ConfigError(f"max_regions must be >= 1 or None, got {self.max_regions}")

    @classmethod
    def study(cls, kind: PromptKind = "box") -> "PromptConfig":
        """The study's defaults: 3 largest regions, 5 inner points, 10 % box jitter."""
        return cls(kind=kind, per="component", max_regions=3, box_jitter=0.1,
                   num_points=5, inner_fraction=0.1, num_negatives=0)


@dataclass
class Prompts:
    """N prompts for one 2D mask of size H x W.

    Attributes:
        boxes: float32 [N,4] (x0, y0, x1, y1), or None for point prompts.
        points: float32 [N,P,2] (x, y), or None for box prompts.
        point_labels: int64 [N,P], 1 = positive, 0 = negative, or None.
        class_ids: int64 [N], the class (1..K) each prompt asks for.
        targets: bool [N,H,W], the region each prompt was drawn from (a component with
            per="component", the whole class with per="class").
    """

    boxes: np.ndarray | None
    points: np.ndarray | None
    point_labels: np.ndarray | None
    class_ids: np.ndarray
    targets: np.ndarray

    def __len__(self) -> int:
        return int(self.class_ids.shape[0])


def regions(class_map: np.ndarray, per: str = "component", max_regions: int | None = 3):
    """[(class_id, bool mask [H,W])] in class order, largest component first per class."""
    found: list[tuple[int, np.ndarray]] = []
    class_map = np.asarray(class_map)
    if not class_map.any():
        return found
    rows = np.flatnonzero(class_map.any(axis=1))
    cols = np.flatnonzero(class_map.any(axis=0))
    window = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
    crop = class_map[window]  # label only the foreground's bounding box: much cheaper
    present = np.unique(crop) if crop.dtype.kind == "f" or crop.size < 4096 else \
        np.flatnonzero(np.bincount(crop.ravel().astype(np.int64)))
    for class_id in present:
        if class_id == 0:
            continue
        binary = crop == class_id
        if per == "class":
            found.append((int(class_id), _uncrop(binary, window, class_map.shape)))
            continue
        labelled, count = ndimage.label(binary, structure=_EIGHT_CONNECTED)
        sizes = np.bincount(labelled.ravel(), minlength=count + 1)[1:]
        order = np.argsort(-sizes, kind="stable")  # ties: lower label (raster order) first
        if max_regions is not None:
            order = order[:max_regions]
        found.extend((int(class_id), _uncrop(labelled == (label + 1), window, class_map.shape)) for label in order)
    return found


def _uncrop(region: np.ndarray, window: tuple[slice, slice], shape: tuple[int, ...]) -> np.ndarray:
    full = np.zeros(shape, dtype=bool)
    full[window] = region
    return full


def mask_box(
    mask: np.ndarray, margin: float = 0.0, jitter: float = 0.0, rng: np.random.Generator | None = None
) -> tuple[float, float, float, float]:
    """(x0, y0, x1, y1) around the non-zero pixels of a non-empty [H, W] mask, in pixels.

    The box runs from the min to the max column/row index of the mask (inclusive: a
    one-pixel mask gives x0 == x1, MedSAM's and the study's convention). Each side is
    then pushed out by ``margin`` pixels plus, with ``jitter`` > 0, U(0, jitter) x the
    box's width (x sides) or height (y sides) drawn from ``rng`` (training's box
    augmentation), and clipped to the image, 0..W-1 and 0..H-1. The one box-from-mask
    helper of the package: training prompts, propagation, refinement and the demo.
    """
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        raise ValueError("an empty mask has no box")
    x0, x1, y0, y1 = float(cols[0]) - margin, float(cols[-1]) + margin, float(rows[0]) - margin, float(rows[-1]) + margin
    if jitter > 0:
        assert rng is not None, "jitter needs a random generator"
        width, height = float(cols[-1] - cols[0]) + 1, float(rows[-1] - rows[0]) + 1
        push = rng.uniform(0.0, jitter, size=4) * np.array([width, height, width, height])
        x0, y0, x1, y1 = x0 - push[0], y0 - push[1], x1 + push[2], y1 + push[3]
    height_px, width_px = mask.shape
    return (max(0.0, float(x0)), max(0.0, float(y0)), min(width_px - 1.0, float(x1)), min(height_px - 1.0, float(y1)))


def inner_pixels(region: np.ndarray, fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """(rows, cols) of the ``fraction`` of region pixels farthest from its border."""
    rows = np.flatnonzero(region.any(axis=1))
    cols = np.flatnonzero(region.any(axis=0))
    r0, r1, c0, c1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    # Pad the crop by one pixel so the image border counts as region border.
    patch = np.pad(region[r0:r1, c0:c1], 1)
    distance = ndimage.distance_transform_edt(patch)[1:-1, 1:-1]
    inside = distance > 0
    values = distance[inside]
    cut = np.quantile(values, 1.0 - fraction, method="lower") if fraction < 1 else values.min()
    pr, pc = np.nonzero(inside & (distance >= cut))
    return pr + r0, pc + c0


def _sample(rows: np.ndarray, cols: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    if count == 0:
        return np.zeros((0, 2), dtype=np.float32)
    if rows.size == 0:
        raise ValueError("no pixels to sample from")
    index = rng.choice(rows.size, size=count, replace=rows.size < count)
    return np.stack([cols[index], rows[index]], axis=1).astype(np.float32)


def prompts_from_mask(class_map: np.ndarray, config: PromptConfig, rng: np.random.Generator) -> Prompts:
    """Prompts for every region of a 2D class map [H,W] (0 = background), see module doc.

    An all-background map gives N = 0 prompts (arrays with a leading 0 axis).
    """
    class_map = np.asarray(class_map)
    found = regions(class_map, config.per, config.max_regions)
    height, width = class_map.shape
    want_boxes = config.kind in ("box", "hybrid")
    want_points = config.kind in ("point", "hybrid")
    boxes, points, labels, class_ids, targets = [], [], [], [], []
    for class_id, region in found:
        class_ids.append(class_id)
        targets.append(region)
        if want_boxes:
            boxes.append(mask_box(region, jitter=config.box_jitter, rng=rng))
        if want_points:
            pos = _sample(*inner_pixels(region, config.inner_fraction), config.num_points, rng)
            neg = np.zeros((0, 2), dtype=np.float32)
            if config.num_negatives:
                neg_rows, neg_cols = np.nonzero(~region)
                neg = _sample(neg_rows, neg_cols, config.num_negatives if neg_rows.size else 0, rng)
            points.append(np.concatenate([pos, neg]))
            labels.append(np.array([1] * len(pos) + [0] * len(neg), dtype=np.int64))
    count = len(class_ids)
    num_p = config.num_points + config.num_negatives
    return Prompts(
        boxes=np.asarray(boxes, np.float32).reshape(count, 4) if want_boxes else None,
        points=_pad_points(points, num_p) if want_points else None,
        point_labels=_pad_labels(labels, num_p) if want_points else None,
        class_ids=np.asarray(class_ids, dtype=np.int64),
        targets=np.asarray(targets, dtype=bool).reshape(count, height, width),
    )


def _pad_points(points: list[np.ndarray], size: int) -> np.ndarray:
    """[N,P,2]; missing negatives (a region with no background) are (0, 0) labelled -1."""
    out = np.zeros((len(points), size, 2), dtype=np.float32)
    for i, pts in enumerate(points):
        out[i, : len(pts)] = pts
    return out


def _pad_labels(labels: list[np.ndarray], size: int) -> np.ndarray:
    """[N,P]; padding entries get SAM's 'not a point' label -1."""
    out = np.full((len(labels), size), -1, dtype=np.int64)
    for i, lab in enumerate(labels):
        out[i, : len(lab)] = lab
    return out
