"""Checks of user prompts against the image they refer to.

Coordinates are pixels of the ORIGINAL image, x to the right (columns) and y down
(rows); a box is (x0, y0, x1, y1), floats in [0, W] x [0, H], as in SAM.
"""

from __future__ import annotations

from collections.abc import Sequence

from samtune.errors import UserError


def check_prompts(
    shape: tuple[int, ...],
    box: Sequence[float] | None,
    points: Sequence[Sequence[float]] | None,
) -> None:
    """Raise UserError for a box (x0, y0, x1, y1) or point (x, y) that is not inside an
    image of `shape` (H, W)."""
    height, width = shape
    if box is None and not points:
        raise UserError("give a prompt: --box X0 Y0 X1 Y1 and/or --point X Y")
    if box is not None:
        x0, y0, x1, y1 = box
        if not (0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height):
            raise UserError(
                f"box ({x0:g}, {y0:g}, {x1:g}, {y1:g}) is not inside the {width}x{height} image "
                "(need 0 <= X0 < X1 <= width and 0 <= Y0 < Y1 <= height, in pixels)"
            )
    for x, y in points or []:
        if not (0 <= x < width and 0 <= y < height):
            raise UserError(f"point ({x:g}, {y:g}) is outside the {width}x{height} image")
