"""A few-shot axis: splits drawn with the cell's seed, one table per size, Dice against shots,
and a size larger than the dataset recorded as a failed cell."""

from __future__ import annotations

import csv
import json

from tests.helpers.tiny_study import study_dict, write_study

from samtune.data.sources import load_source
from samtune.data.split import split_cases
from samtune.study.preflight import load_study
from samtune.study.runner import run_study


def test_few_shot_cells(disc_sources, tmp_path, keep_torch_threads):
    data = study_dict(disc_sources, components=["decoder"], methods=["full"], shots=[2, None, 9])
    out = tmp_path / "out"
    study = load_study(write_study(tmp_path / "study.yaml", data))
    outcome = run_study(study, out, log=lambda line: None, isolate=False)  # in this process
    with open(out / "results.csv", newline="") as handle:
        rows = {row["shots"]: row for row in csv.DictReader(handle)}
    assert [rows[k]["status"] for k in ("2", "all", "9")] == ["done", "done", "failed"]
    assert outcome.failed == ["discs__tiny_vit_test__decoder__full__seed0__shots9"]
    assert rows["9"]["error"] == (f"split: datasets.discs.train ({disc_sources['train']}) has 4 patient group(s), "
                                  "fewer than shots 9")

    split = out / "splits" / "discs" / "shots2_seed0"
    expected = [c.case_id for c in split_cases(load_source(disc_sources["train"]), 2, seed=0).train]
    assert json.loads((split / "split.json").read_text(encoding="utf-8"))["train"] == expected
    assert [c.case_id for c in load_source(split / "val.csv").cases] == ["case00", "case01"]  # the dataset's val
    run = out / "runs" / "discs__tiny_vit_test__decoder__full__seed0__shots2"
    assert json.loads((run / "run.json").read_text(encoding="utf-8"))["train_slices"] == 2
    assert json.loads((out / "runs" / "discs__tiny_vit_test__decoder__full__seed0" / "run.json").read_text(encoding="utf-8"))[
        "train_slices"] == 4

    markdown = (out / "results.md").read_text(encoding="utf-8")
    assert "## 2 training case(s)" in markdown and "## all training cases" in markdown
    assert "## 9 training case(s)" in markdown and "| tiny_vit_test/decoder/full | - | failed | - |" in markdown
    assert (out / "dice_vs_shots.png").read_bytes()[:4] == b"\x89PNG"


def test_dice_vs_shots_draws_a_line_per_strategy_and_baseline_with_a_band_over_seeds(disc_sources, tmp_path,
                                                                                     monkeypatch, keep_torch_threads):
    """The plotted data: per strategy (the U-Net baseline included), the mean Dice over seeds at
    each size and a band of ± the std over seeds, equal to results.csv's rows."""
    import os
    import shutil

    import numpy as np

    from samtune.study import plots

    unet = {"overrides": ["optim.steps=3", "optim.lr=0.01", "eval.every=3", "run.checkpoint_every=3"]}
    data = study_dict(disc_sources, backbones={"tiny_vit_test": {}, "unet_test": unet}, components=["decoder"],
                      methods=["full"], shots=[1, 2, None], seeds=[0, 1])
    drawn = {}

    def capture(figure, path):
        if path.name == "dice_vs_shots.png":
            axes = figure.axes[0]
            bands = [c.get_paths()[0].vertices for c in axes.collections]
            drawn.update(lines={ln.get_label(): (list(ln.get_xdata()), list(ln.get_ydata())) for ln in axes.lines},
                         bands=bands, ticks=[t.get_text() for t in axes.get_xticklabels()])
        save(figure, path)

    save = plots._save
    monkeypatch.setattr(plots, "_save", capture)
    out = tmp_path / "out"
    outcome = run_study(load_study(write_study(tmp_path / "study.yaml", data)), out, log=lambda line: None,
                        isolate=False)
    assert not outcome.failed and len(outcome.ran) == 12
    with open(out / "results.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert drawn["ticks"] == ["1", "2", "all"]
    assert set(drawn["lines"]) == {"tiny_vit_test/decoder/full", "U-Net (scratch)"}
    for (strategy, (xs, ys)), band in zip(drawn["lines"].items(), drawn["bands"]):
        assert xs == [0, 1, 2]
        for x, y, shots in zip(xs, ys, ("1", "2", "all")):
            dice = [float(r["dice_mean"]) for r in rows if r["strategy"] == strategy and r["shots"] == shots]
            assert len(dice) == 2 and y == np.mean(dice)
            at_x = band[np.isclose(band[:, 0], x), 1]  # the band's lower and upper edge at this size
            assert min(at_x) == np.mean(dice) - np.std(dice) and max(at_x) == np.mean(dice) + np.std(dice)
    if os.environ.get("SAMTUNE_KEEP_PICTURES"):
        shutil.copy(out / "dice_vs_shots.png", os.environ["SAMTUNE_KEEP_PICTURES"])
