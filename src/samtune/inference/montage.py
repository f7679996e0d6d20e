"""A montage PNG of a labelled volume: a grid of overlaid slices, for a person to look at."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from samtune.inference.overlay import overlay


def montage_slices(labels: np.ndarray, axis: int, tiles: int) -> list[int]:
    """Up to ``tiles`` slice indices, evenly spaced over the slices that hold labels (or over
    the whole volume when none does), in increasing order."""
    other = tuple(i for i in range(labels.ndim) if i != axis)
    labelled = np.flatnonzero(np.asarray(labels != 0).any(axis=other))
    first, last = (labelled[0], labelled[-1]) if labelled.size else (0, labels.shape[axis] - 1)
    return sorted({int(round(v)) for v in np.linspace(first, last, num=min(tiles, last - first + 1))})


def montage(volume: np.ndarray, labels: np.ndarray, axis: int = 0, tiles: int = 16, columns: int = 4) -> np.ndarray:
    """uint8 RGB grid of overlays of ``tiles`` slices, each tile labelled with its index.

    Args:
        volume: [z, y, x] or [z, y, x, C] intensities.
        labels: [z, y, x] label map (0 = background).
        axis: the slicing axis.
    """
    indices = montage_slices(labels, axis, tiles)
    panels = []
    for index in indices:
        panel = Image.fromarray(overlay(np.take(volume, index, axis=axis), np.take(labels, index, axis=axis)))
        ImageDraw.Draw(panel).text((3, 2), str(index), fill=(255, 255, 0))
        panels.append(np.asarray(panel))
    columns = min(columns, len(panels))
    rows = -(-len(panels) // columns)
    height, width = panels[0].shape[:2]
    grid = np.zeros((rows * height, columns * width, 3), dtype=np.uint8)
    for position, panel in enumerate(panels):
        row, col = divmod(position, columns)
        grid[row * height : (row + 1) * height, col * width : (col + 1) * width] = panel
    return grid
