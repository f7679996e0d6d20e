"""A titled side-by-side picture: the truth and one or more predictions of one slice.

Each panel says what it shows and its Dice, the prompt box (and points) are drawn on
every panel, a legend names the class colour, and volumes are shown in the radiological
convention (`samtune.data.orientation`), which the picture states.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from samtune.atomic import atomic_path
from samtune.data.geometry import Geometry
from samtune.data.orientation import radiological_slice
from samtune.inference.overlay import PALETTE, overlay


@dataclass
class Panel:
    title: str  # e.g. "zero-shot"
    labels: np.ndarray  # [H, W] class map of the slice as stored
    dice: float | None = None


def _oriented_box(box: Sequence[float], shape: tuple[int, int], geometry: Geometry | None, axis: int):
    """The box (x0, y0, x1, y1 as stored, the last row and column included, as `mask_box`
    makes them) in the displayed frame, as (first column, first row, last + 1, last + 1)."""
    mask = np.zeros(shape, dtype=bool)
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    mask[max(y0, 0): max(y1 + 1, 1), max(x0, 0): max(x1 + 1, 1)] = True
    turned, _ = radiological_slice(mask, geometry, axis)
    rows, cols = np.nonzero(turned)
    return cols.min(), rows.min(), cols.max() + 1, rows.max() + 1


def comparison_figure(
    image: np.ndarray,
    panels: Sequence[Panel],
    path: str | Path,
    box: Sequence[float] | None = None,
    points: Sequence[Sequence[float]] = (),
    class_name: str | Sequence[str] = "foreground",
    geometry: Geometry | None = None,
    axis: int = 0,
    title: str | None = None,
) -> Path:
    """Write the picture as PNG (atomically); returns its path.

    ``image`` and each panel's labels are one slice as stored; ``geometry`` and ``axis``
    (the volume's geometry and the axis the slice was taken along) turn it for display.
    ``box`` / ``points`` are pixel coordinates of the stored slice (x = column, y = row).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.patches as patches
    import matplotlib.pyplot as plt
    from matplotlib.artist import Artist

    shown, note = radiological_slice(image, geometry, axis)
    height, width = shown.shape[:2]
    columns = 2 if len(panels) == 1 else 4  # legend entries per row
    figure, axes = plt.subplots(1, len(panels), figsize=(max(3.2 * len(panels), 4.2), 3.2 * height / width + 1.1))
    axes = np.atleast_1d(axes)
    for ax, panel in zip(axes, panels):
        labels, _ = radiological_slice(np.asarray(panel.labels), geometry, axis)
        ax.imshow(overlay(shown, labels))
        heading = panel.title if panel.dice is None else f"{panel.title}: Dice {panel.dice:.3f}"
        ax.set_title(heading, fontsize=10)
        if box is not None:
            x0, y0, x1, y1 = _oriented_box(box, image.shape[:2], geometry, axis)
            ax.add_patch(patches.Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False,
                                           edgecolor="yellow", linewidth=1.2, linestyle="--"))
        for x, y in points:
            marker = np.zeros(image.shape[:2], dtype=bool)
            marker[int(round(y)), int(round(x))] = True
            rows, cols = np.nonzero(radiological_slice(marker, geometry, axis)[0])
            ax.plot(cols, rows, marker="*", color="yellow", markersize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    names = [class_name] if isinstance(class_name, str) else list(class_name)
    handles: list[Artist] = [patches.Patch(facecolor=PALETTE[i % len(PALETTE)] / 255, edgecolor=PALETTE[i % len(PALETTE)] / 255,
                             label=f"{i + 1} {name}" if len(names) > 1 else name) for i, name in enumerate(names)]
    if box is not None:
        handles.append(patches.Patch(fill=False, edgecolor="yellow", linestyle="--", label="prompt box"))
    if len(points):
        handles.append(plt.Line2D([], [], color="yellow", marker="*", linestyle="", label="prompt point"))
    figure.legend(handles=handles, loc="lower left", ncol=min(len(handles), columns), fontsize=8, frameon=False)
    if note:
        figure.text(0.99, 0.005, note, ha="right", va="bottom", fontsize=7, color="0.3")
    if title:
        figure.suptitle(title, fontsize=10)
    legend_rows = -(-len(handles) // columns)
    figure.tight_layout(rect=(0, 0.05 * legend_rows + 0.03, 1, 1))
    path = Path(path)
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=100)
    plt.close(figure)
    return path
