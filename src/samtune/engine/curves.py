"""`curves.png` of a run: training loss, learning rate and validation Dice against step.

The title names the run folder and its strategy, so that a picture lifted out of its
folder still says what it shows. The Dice axis spans [0, 1] with a margin, so a run whose
validation Dice stays at zero shows its points on the axis line, not hidden under it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from samtune.atomic import atomic_path


def plot_training_curves(records: list[dict[str, Any]], path: str | Path, title: str | None = None) -> Path:
    """Three panels from metrics.jsonl records; written atomically as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    train = [r for r in records if "loss" in r]
    val = [r for r in records if "val_dice" in r]
    figure, (loss_ax, lr_ax, dice_ax) = plt.subplots(1, 3, figsize=(12, 3.4))
    loss_ax.plot([r["step"] for r in train], [r["loss"] for r in train], color="tab:blue")
    loss_ax.set(title="training loss", xlabel="step")
    with_lr = [r for r in train if "lr" in r]
    lr_ax.plot([r["step"] for r in with_lr], [r["lr"] for r in with_lr], color="tab:orange")
    lr_ax.set(title="learning rate", xlabel="step")
    lr_ax.ticklabel_format(axis="y", style="sci", scilimits=(-2, 2))
    dice_ax.plot([r["step"] for r in val], [r["val_dice"] for r in val], marker="o", color="tab:green",
                 clip_on=False)
    dice_ax.set(title="validation Dice (foreground)", xlabel="step", ylim=(-0.03, 1.03))
    if val:
        best = max(val, key=lambda r: r["val_dice"])
        first, last = val[0]["step"], val[-1]["step"]
        where = (best["step"] - first) / (last - first) if last > first else 0.5
        align = "right" if where > 0.66 else "left" if where < 0.33 else "center"  # keep it inside the axes
        dice_ax.annotate(f"best {best['val_dice']:.3f} @ {best['step']}", (best["step"], best["val_dice"]),
                         textcoords="offset points", xytext=(0, 8), ha=align, fontsize=8)
    else:
        dice_ax.text(0.5, 0.5, "no validation data", ha="center", va="center", transform=dice_ax.transAxes)
    if title:
        figure.suptitle(title, fontsize=11)
    figure.tight_layout()
    path = Path(path)
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=100)
    plt.close(figure)
    return path
