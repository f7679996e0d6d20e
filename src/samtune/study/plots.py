"""The study's PNG plots (matplotlib, Agg backend).

- ``dice_by_strategy.png``: mean Dice of each strategy, one bar per dataset, error bars
  as in the table (the largest few-shot size when there are several).
- ``dice_vs_parameters.png``: mean Dice against trainable parameters (log axis), one
  panel per dataset; colour = backbone, marker = method, filled = encoder+decoder,
  hollow = decoder only (the legend shows colour and fill as patches, markers as methods).
- ``dice_vs_shots.png`` (with a few-shot axis): mean Dice over seeds against the number of
  training cases, one line per strategy and per baseline (U-Net, nnU-Net), a band of
  ± one std over seeds where two or more seeds finished, one panel per dataset ("all"
  plotted last).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from samtune.atomic import atomic_path
from samtune.study.results import Aggregate

MARKERS = {"full": "o", "adapter": "s", "lora": "^", "dora": "D"}
PLOT_FILES = ("dice_by_strategy.png", "dice_vs_parameters.png", "dice_vs_shots.png")


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(figure, path: Path) -> None:
    figure.tight_layout()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=110)


def _main_shots(aggregates: list[Aggregate]) -> int | None:
    values = {a.shots for a in aggregates}
    return None if None in values else max(values)  # type: ignore[type-var]


def _short_names(chosen: list[Aggregate], strategies: list[str]) -> tuple[list[str], str]:
    """Strategy labels without the backbone prefix when every cell has the same backbone."""
    backbones = {a.backbone for a in chosen}
    if len(backbones) != 1:
        return strategies, ""
    (backbone,) = backbones
    prefix = backbone + "/"
    return [s[len(prefix):] if s.startswith(prefix) else s for s in strategies], backbone


def _wrap(label: str, width: int) -> str:
    """`label` on lines of about `width` characters, broken after a space, '@' or '/'
    (never inside a name such as lite_medsam or encoder+decoder)."""
    lines = [""]
    for piece in re.findall(r"[^ @/]+[ @/]?|[ @/]", label):
        if lines[-1] and len(lines[-1]) + len(piece.rstrip()) > width:
            lines.append("")
        lines[-1] += piece
    return "\n".join(line.rstrip() for line in lines)


def plot_dice_by_strategy(aggregates: list[Aggregate], path: Path) -> None:
    plt = _pyplot()
    shots = _main_shots(aggregates)
    chosen = [a for a in aggregates if a.shots == shots]
    strategies = list(dict.fromkeys(a.strategy for a in chosen))
    datasets = list(dict.fromkeys(a.dataset for a in chosen))
    by_key = {(a.strategy, a.dataset): a for a in chosen}
    width = 0.8 / len(datasets)
    figure, axes = plt.subplots(figsize=(max(6.0, 0.55 * len(strategies) * max(1, len(datasets)) + 2), 4.2))
    for j, dataset in enumerate(datasets):
        xs, ys, errors, missing = [], [], [], []
        for i, strategy in enumerate(strategies):
            entry = by_key.get((strategy, dataset))
            x = i - 0.4 + width * (j + 0.5)
            if entry is not None and entry.dice is not None:
                xs.append(x)
                ys.append(entry.dice)
                errors.append(entry.std or 0.0)
            elif entry is not None:  # no finished run: say why the bar is missing
                missing.append((x, "failed" if entry.n_failed else "pending"))
        axes.bar(xs, ys, width, yerr=errors, capsize=2, label=dataset)
        for x, word in missing:
            axes.text(x, 0.02, word, rotation=90, ha="center", va="bottom", fontsize=8,
                      color="tab:red" if word == "failed" else "0.4")
    axes.set_xlim(-0.6, len(strategies) - 0.4)
    labels, backbone = _short_names(chosen, strategies)
    if max(len(label) for label in labels) > 40:  # e.g. "setup 2 (task-expansive): model@init/...": wrap, upright
        labels = [_wrap(label, 26) for label in labels]
        lines = max(label.count("\n") + 1 for label in labels)
        figure.set_size_inches(max(figure.get_size_inches()[0], 2.2 * len(strategies) + 1), 3.4 + 0.16 * lines)
        axes.set_xticks(range(len(strategies)), labels, rotation=0, ha="center", fontsize=8)
    else:
        axes.set_xticks(range(len(strategies)), labels, rotation=60 if backbone == "" else 30, ha="right", fontsize=8)
    title = "mean Dice per strategy" + (f" of {backbone}" if backbone else "")
    title += f" on {datasets[0]}" if len(datasets) == 1 else ""
    title += f" ({shots} training cases)" if shots is not None else ""
    axes.set(ylabel="Dice", ylim=(0, 1), title=title)
    if len(datasets) > 1:
        axes.legend(fontsize=8)
    _save(figure, path)
    plt.close(figure)


def _count_label(value: float, _position: int) -> str:
    if value >= 1e6:
        return f"{value / 1e6:g}M"
    return f"{value / 1e3:g}K" if value >= 1e3 else f"{value:g}"


def plot_dice_vs_parameters(aggregates: list[Aggregate], path: Path) -> None:
    plt = _pyplot()
    from matplotlib.ticker import FuncFormatter, NullFormatter

    shots = _main_shots(aggregates)
    chosen = [a for a in aggregates if a.shots == shots and a.dice is not None and a.trainable]
    datasets = list(dict.fromkeys(a.dataset for a in aggregates))
    backbones = list(dict.fromkeys(a.backbone for a in aggregates))
    colours = {b: f"C{i % 10}" for i, b in enumerate(backbones)}
    figure, panels = plt.subplots(1, len(datasets), figsize=(4.6 * len(datasets) + 1.6, 3.8), squeeze=False)
    for axes, dataset in zip(panels[0], datasets):
        for a in (a for a in chosen if a.dataset == dataset):
            filled = a.component != "decoder"
            axes.scatter(a.trainable, a.dice, marker=MARKERS.get(a.method, "*"), s=46, edgecolors=colours[a.backbone],
                         facecolors=colours[a.backbone] if filled else "none")
        axes.set(xscale="log", xlabel="trainable parameters", ylabel="Dice", ylim=(0, 1.02), title=dataset)
        # Only decades get labels (1M, 10M): minor labels of a short log range collide.
        axes.xaxis.set_major_formatter(FuncFormatter(_count_label))
        axes.xaxis.set_minor_formatter(NullFormatter())
    from matplotlib.patches import Patch

    handles = [Patch(color=colours[b], label=b) for b in backbones]
    methods = list(dict.fromkeys(a.method for a in aggregates))
    handles += [plt.Line2D([], [], color="gray", marker=MARKERS.get(m, "*"), linestyle="", label=m) for m in methods]
    handles += [Patch(facecolor="gray", edgecolor="gray", label="encoder+decoder (filled)"),
                Patch(facecolor="none", edgecolor="gray", label="decoder only (hollow)")]
    panels[0][-1].legend(handles=handles, fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5))
    _save(figure, path)
    plt.close(figure)


def plot_dice_vs_shots(aggregates: list[Aggregate], path: Path) -> None:
    plt = _pyplot()
    shot_values = sorted({a.shots for a in aggregates if a.shots is not None})
    positions: dict[int | None, int] = {s: i for i, s in enumerate(shot_values)}
    if any(a.shots is None for a in aggregates):
        positions[None] = len(shot_values)
    labels = [str(s) for s in shot_values] + (["all"] if None in positions else [])
    datasets = list(dict.fromkeys(a.dataset for a in aggregates))
    strategies = list(dict.fromkeys(a.strategy for a in aggregates))
    figure, panels = plt.subplots(1, len(datasets), figsize=(4.6 * len(datasets) + 2.4, 3.8), squeeze=False)
    for axes, dataset in zip(panels[0], datasets):
        for strategy in strategies:
            points = sorted((positions[a.shots], a.dice, a.std if a.std_over == "seeds" else None)
                            for a in aggregates
                            if a.dataset == dataset and a.strategy == strategy and a.dice is not None)
            if not points:
                continue
            xs, ys, spreads = zip(*points)
            (line,) = axes.plot(xs, ys, marker="o", label=strategy)
            banded = [(x, y, spread) for x, y, spread in points if spread is not None]
            if banded:  # mean ± std over seeds, where two or more seeds finished
                bx, by, bs = (np.array(v, dtype=float) for v in zip(*banded))
                axes.fill_between(bx, by - bs, by + bs, color=line.get_color(), alpha=0.2, linewidth=0)
        axes.set_xticks(range(len(labels)), labels)
        axes.set(xlabel="training cases", ylabel="Dice (mean over seeds, band ± std)", ylim=(0, 1), title=dataset)
    panels[0][-1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5))
    _save(figure, path)
    plt.close(figure)


def write_plots(aggregates: list[Aggregate], out_dir: Path) -> list[Path]:
    """Write the plots that the results support; returns their paths."""
    out_dir = Path(out_dir)
    if not any(a.dice is not None for a in aggregates):
        return []
    written = [out_dir / PLOT_FILES[0], out_dir / PLOT_FILES[1]]
    plot_dice_by_strategy(aggregates, written[0])
    plot_dice_vs_parameters(aggregates, written[1])
    if any(a.shots is not None for a in aggregates):
        written.append(out_dir / PLOT_FILES[2])
        plot_dice_vs_shots(aggregates, written[2])
    return written
