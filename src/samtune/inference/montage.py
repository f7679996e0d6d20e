"""A montage PNG of a labelled volume: a grid of overlaid slices, for a person to look at."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from samtune.data.geometry import Geometry
from samtune.data.orientation import radiological_slice
from samtune.data.slicing import take_slice
from samtune.inference.overlay import overlay

MARK_COLOUR = (255, 255, 0)  # the prompt slice's frame and caption
NOTE_HEIGHT = 14  # pixels of the strip below the grid that states the display convention


def montage_slices(labels: np.ndarray, axis: int, tiles: int) -> list[int]:
    """Up to ``tiles`` slice indices, evenly spaced over the slices that hold labels (or over
    the whole volume when none does), in increasing order."""
    other = tuple(i for i in range(labels.ndim) if i != axis)
    labelled = np.flatnonzero(np.asarray(labels != 0).any(axis=other))
    first, last = (labelled[0], labelled[-1]) if labelled.size else (0, labels.shape[axis] - 1)
    return sorted({int(round(v)) for v in np.linspace(first, last, num=min(tiles, last - first + 1))})


def montage(volume: np.ndarray, labels: np.ndarray, axis: int = 0, tiles: int = 16, columns: int = 4,
            geometry: Geometry | None = None, mark: int | None = None) -> np.ndarray:
    """uint8 RGB grid of overlays of ``tiles`` slices, each tile labelled with its index.

    Args:
        volume: [z, y, x] or [z, y, x, C] intensities.
        labels: [z, y, x] label map (0 = background).
        axis: the slicing axis.
        geometry: the volume's geometry: tiles are shown in the radiological convention
            (`samtune.data.orientation`) and a strip under the grid says so.
        mark: a slice to include and frame (the prompt slice of a propagation).
    """
    indices = montage_slices(labels, axis, tiles)
    if mark is not None and 0 <= mark < labels.shape[axis] and mark not in indices:
        nearest = min(range(len(indices)), key=lambda i: abs(indices[i] - mark))
        indices = sorted(indices[:nearest] + [mark] + indices[nearest + 1:])
    panels, note = [], ""
    for index in indices:
        image, note = radiological_slice(take_slice(volume, axis, index), geometry, axis)
        tile_labels, _ = radiological_slice(take_slice(labels, axis, index), geometry, axis)
        panel = Image.fromarray(overlay(image, tile_labels))
        draw = ImageDraw.Draw(panel)
        if index == mark:
            draw.rectangle((0, 0, panel.width - 1, panel.height - 1), outline=MARK_COLOUR, width=2)
            draw.text((3, 2), f"{index} prompt", fill=MARK_COLOUR)
        else:
            draw.text((3, 2), str(index), fill=(255, 255, 255))
        panels.append(np.asarray(panel))
    columns = min(columns, len(panels))
    rows = -(-len(panels) // columns)
    height, width = panels[0].shape[:2]
    grid = np.zeros((rows * height, columns * width, 3), dtype=np.uint8)
    for position, pixels in enumerate(panels):
        row, col = divmod(position, columns)
        grid[row * height : (row + 1) * height, col * width : (col + 1) * width] = pixels
    if note:
        strip = Image.new("RGB", (grid.shape[1], NOTE_HEIGHT))
        ImageDraw.Draw(strip).text((3, 1), note, fill=(200, 200, 200))
        grid = np.concatenate([grid, np.asarray(strip)], axis=0)
    return grid
