"""Study plots (issue 12, item 17): missing bars are marked, one backbone is not repeated, and
dice_vs_parameters labels decades only."""

from __future__ import annotations

import os

from samtune.study import plots
from samtune.study.results import Aggregate

# The README's cpu_prostate figures (5-shot prostate, one seed), plus a failed and a pending cell.
ROWS = [("decoder", "full", 0.733, 3_920_000), ("decoder", "adapter", 0.744, 684_900),
        ("decoder", "lora", 0.739, 576_100), ("encoder+decoder", "full", 0.770, 9_640_000),
        ("encoder+decoder", "adapter", None, 1_080_000), ("encoder+decoder", "lora", None, 605_800)]


def _aggregates():
    out = []
    for i, (component, method, dice, trainable) in enumerate(ROWS):
        out.append(Aggregate(f"lite_medsam/{component}/{method}", "lite_medsam", component, method, "prostate",
                             None, dice, 0.1 if dice else None, "cases", int(dice is not None), int(i == 4), 1,
                             trainable))
    return out


def test_plots_mark_missing_cells_and_drop_the_backbone_prefix(tmp_path, monkeypatch):
    seen = {}
    save = plots._save

    def capture(figure, path):
        axes = figure.axes[0]
        seen[path.name] = {
            "ticks": [t.get_text() for t in axes.get_xticklabels()],
            "minor": [t.get_text() for t in axes.get_xticklabels(minor=True) if t.get_text()],
            "texts": [t.get_text() for t in axes.texts],
            "title": axes.get_title(),
        }
        save(figure, path)

    monkeypatch.setattr(plots, "_save", capture)
    written = plots.write_plots(_aggregates(), tmp_path)
    by_strategy = seen["dice_by_strategy.png"]
    assert by_strategy["ticks"][0] == "decoder/full" and by_strategy["ticks"][-1] == "encoder+decoder/lora"
    assert by_strategy["texts"] == ["failed", "pending"]
    assert by_strategy["title"] == "mean Dice per strategy of lite_medsam on prostate"
    parameters = seen["dice_vs_parameters.png"]
    assert parameters["minor"] == []  # no crowded minor labels between 500K and 10M
    assert set(parameters["ticks"]) & {"1M", "10M"}
    if os.environ.get("SAMTUNE_KEEP_PICTURES"):
        for path in written:
            os.replace(path, os.path.join(os.environ["SAMTUNE_KEEP_PICTURES"], path.name))


def test_two_directions_get_a_mean_with_its_range():
    """The issue's figures for two strategies, trained one way and the other (one seed each)."""
    from samtune.study.table import format_table

    figures = {"decoder/lora": (0.739, 0.687), "encoder+decoder/lora": (0.788, 0.398)}
    aggregates = [
        Aggregate(f"lite_medsam/{name}", "lite_medsam", name.split("/")[0], "lora", dataset, None, dice, 0.1,
                  "cases", 1, 0, 1, 600_000)
        for name, pair in figures.items() for dataset, dice in zip(("prostate", "prostate_swapped"), pair)
    ]
    lines = format_table(aggregates, None).splitlines()
    assert lines[0] == "| strategy | trainable | prostate | prostate_swapped | mean (range) | mean rank |"
    assert "| 0.713 (0.687–0.739) | 1.5 |" in lines[2]  # (0.739 + 0.687) / 2; ranks 2 and 1
    assert "| 0.593 (0.398–0.788) | 1.5 |" in lines[3]


def test_long_strategy_labels_wrap_between_names():
    from samtune.study.plots import _wrap

    label = "setup 2 (task-expansive): lite_medsam@expansive/encoder+decoder/adapter"
    wrapped = _wrap(label, 26)
    assert wrapped.replace("\n", "").replace(" ", "") == label.replace(" ", "")  # nothing lost
    assert wrapped.splitlines() == ["setup 2 (task-expansive):", "lite_medsam@expansive/", "encoder+decoder/adapter"]
