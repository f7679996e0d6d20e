"""Pictures of a pretraining run: loss curves and reconstructions of fixed slices."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from samtune.atomic import atomic_path
from samtune.models.mim_decoder import pixel_mask


def _figure(rows: int, cols: int, size: tuple[float, float]):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt, *plt.subplots(rows, cols, figsize=size, squeeze=False)


def plot_pretrain_curves(records: list[dict[str, Any]], path: Path) -> None:
    """Training loss and the fixed slices' masked loss against step (both masked-pixel L1)."""
    plt, figure, axes = _figure(1, 1, (5.5, 3.2))
    ax = axes[0][0]
    train = [r for r in records if "loss" in r]
    val = [r for r in records if "val_loss" in r]
    ax.plot([r["step"] for r in train], [r["loss"] for r in train], color="tab:blue", label="training batches")
    ax.plot([r["step"] for r in val], [r["val_loss"] for r in val], marker="o", color="tab:green",
            label="fixed slices")
    ax.set(title="masked-pixel L1 (lower is better)", xlabel="step")
    ax.legend()
    figure.tight_layout()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=100)
    plt.close(figure)


def plot_reconstructions(rows: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]], mask_patch: int,
                         path: Path, step: int) -> None:
    """One row per slice: original | masked input | reconstruction (masked patches) over original.

    Shown is channel 0 of the normalised model input; all three panels of a row share the
    original's grey scale. The masked input shows hidden patches in flat grey.
    """
    plt, figure, axes = _figure(len(rows), 3, (7.5, 2.5 * len(rows)))
    titles = ("original", "masked input", "reconstruction")
    for r, (image, mask, reconstruction) in enumerate(rows):
        original = image[0].numpy()
        hidden = pixel_mask(mask[None], mask_patch)[0].numpy()
        low, high = float(original.min()), float(original.max())
        masked = np.where(hidden, np.nan, original)
        filled = np.where(hidden, reconstruction[0].numpy(), original)
        for c, panel in enumerate((original, masked, filled)):
            ax = axes[r][c]
            cmap = plt.get_cmap("gray").with_extremes(bad="#808080")
            ax.imshow(panel, cmap=cmap, vmin=low, vmax=high, interpolation="nearest")
            ax.set_axis_off()
            if r == 0:
                ax.set_title(titles[c], fontsize=9)
    figure.suptitle(f"step {step}", fontsize=9)
    figure.tight_layout()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=80)
    plt.close(figure)
