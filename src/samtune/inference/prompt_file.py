"""Prompts per input: the ``--prompts prompts.json`` file of `samtune predict`.

Format: one JSON object whose keys name inputs (the file or folder name, with or without
its extension: ``"case_01.png"`` or ``"case_01"``) and whose values are objects with
any of these keys::

    {
      "case_01.png":  {"box": [x0, y0, x1, y1]},
      "case_02":      {"points": [[x, y], [x, y]], "point_labels": [1, 0]},
      "brain.nii.gz": {"box": [60, 40, 140, 180], "slice": 94}
    }

- ``box``: 4 numbers, pixels of the (slice) image, x = column, y = row, origin top left;
- ``points``: ``[x, y]`` pairs in the same frame; ``point_labels``: 1 = object,
  0 = background, one per point (default: all 1);
- ``slice``: volumes only: the slice index (along ``--axis``) that the box/points are on;
  propagation starts there and runs through the volume in both directions.

Unknown keys, wrong types and a label count that differs from the point count are errors
naming the entry.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from samtune.errors import UserError

PROMPT_KEYS = ("box", "points", "point_labels", "slice")


@dataclass(frozen=True)
class InputPrompt:
    """A prompt for one input: box and/or points, and for volumes the slice they are on."""

    box: tuple[float, float, float, float] | None = None
    points: tuple[tuple[float, float], ...] | None = None
    point_labels: tuple[int, ...] | None = None
    slice: int | None = None

    @property
    def is_empty(self) -> bool:
        """True when neither a box nor points are given."""
        return self.box is None and not self.points


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise UserError(f"{where}: {value!r} is not a finite number")
    return float(value)


def parse_prompt(entry: Any, where: str) -> InputPrompt:
    """One JSON entry -> `InputPrompt`; ``where`` names it in errors."""
    if not isinstance(entry, dict):
        raise UserError(f"{where}: expected an object with {', '.join(PROMPT_KEYS)}, got {type(entry).__name__}")
    unknown = sorted(set(entry) - set(PROMPT_KEYS))
    if unknown:
        raise UserError(f"{where}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(PROMPT_KEYS)}")
    box = entry.get("box")
    if box is not None:
        if not isinstance(box, list) or len(box) != 4:
            raise UserError(f"{where}: 'box' must be [x0, y0, x1, y1], got {box!r}")
        box = tuple(_number(v, f"{where} box") for v in box)
    points = entry.get("points")
    if points is not None:
        if not isinstance(points, list) or not all(isinstance(p, list) and len(p) == 2 for p in points):
            raise UserError(f"{where}: 'points' must be a list of [x, y] pairs, got {points!r}")
        points = tuple((_number(x, f"{where} points"), _number(y, f"{where} points")) for x, y in points)
    labels = entry.get("point_labels")
    if labels is not None:
        if not isinstance(labels, list) or any(v not in (0, 1) or isinstance(v, bool) for v in labels):
            raise UserError(f"{where}: 'point_labels' must be a list of 1 (object) / 0 (background)")
        if points is None or len(labels) != len(points):
            raise UserError(f"{where}: {len(labels)} point_labels for {len(points or ())} points; give one per point")
        labels = tuple(int(v) for v in labels)
    index = entry.get("slice")
    if index is not None and (isinstance(index, bool) or not isinstance(index, int) or index < 0):
        raise UserError(f"{where}: 'slice' must be a slice index >= 0, got {index!r}")
    return InputPrompt(box, points, labels, index)


def load_prompt_file(path: str | Path) -> dict[str, InputPrompt]:
    """Read a prompts JSON file (module docstring) -> {input name: prompt}."""
    path = Path(path)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"prompts file not found: {path}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise UserError(f"{path} is not valid JSON: {error}") from None
    if not isinstance(document, dict):
        raise UserError(f"{path}: expected an object {{\"input name\": {{\"box\": [...]}}, ...}}")
    return {str(name): parse_prompt(entry, f"{path} entry '{name}'") for name, entry in document.items()}
