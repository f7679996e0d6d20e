"""The five MRI-Prostate validation slices with their masks and box prompts, shared by the
inference-precision benchmarks (bf16_dice.py, onnx_int8.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

PROSTATE = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "MRI-Prostate"


def prostate_val_slices() -> list[tuple[np.ndarray, np.ndarray, tuple[float, float, float, float]]]:
    """(image, boolean truth, box (x0, y0, x1, y1) around the truth's extreme pixels) per slice."""
    slices = []
    for row in (PROSTATE / "val_5shot.csv").read_text().split():
        image_path, mask_path = row.split(",")
        image = np.asarray(Image.open(PROSTATE.parent / image_path))
        truth = np.asarray(Image.open(PROSTATE.parent / mask_path.lstrip("/"))) > 0
        rows, cols = np.nonzero(truth)
        slices.append((image, truth, (float(cols.min()), float(rows.min()), float(cols.max()), float(rows.max()))))
    return slices
