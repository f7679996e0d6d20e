"""Cell status, results rows, aggregation over seeds, ranks and the markdown table, on run
directories written by hand (no training)."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
from tests.helpers.tiny_study import study_dict, write_study

from samtune.configs import save_config
from samtune.evaluation.accumulator import MetricAccumulator
from samtune.evaluation.evaluate import write_report
from samtune.study.preflight import load_study
from samtune.study.cost import calibration, cell_kind, estimate_cell, measured_rates, table_train_seconds
from samtune.study.grid import expand_cells
from samtune.study.results import aggregate, cell_row
from samtune.study.state import cell_status, record_failure, run_dir
from samtune.study.table import format_results, format_table, ranks


@pytest.fixture
def grid(disc_sources, tmp_path):
    data = study_dict(disc_sources, components=["decoder"], methods=["full", "lora"], seeds=[0, 1, 2])
    cells = expand_cells(load_study(write_study(tmp_path / "study.yaml", data)), tmp_path / "out")
    return tmp_path / "out", cells


def fake_run(out, cell, trained=True, checkpoint=True, scored=True, config=None):
    """A run directory as `train` and `evaluate_run` leave it. Scores: case a Dice 2/3
    (2 of 4 foreground pixels found), case b perfect."""
    directory = run_dir(out, cell)
    (directory / "state").mkdir(parents=True)
    save_config(config or cell.config, directory / "config.yaml")
    if checkpoint:
        (directory / "state" / "last.pt").write_bytes(b"")
    if trained:
        (directory / "summary.json").write_text(json.dumps({
            "steps": 3, "train_seconds": 12.5, "peak_rss_mb": 321.0, "trainable_parameters": 1234,
            "total_parameters": 99999, "best_val_dice": 0.5}))
    if scored:
        gt = np.zeros((4, 4), np.uint8)
        gt[0, :4] = 1
        half = gt.copy()
        half[0, 2:] = 0
        accumulator = MetricAccumulator(distance_unit="pixel")
        accumulator.add("a", half, gt, classes=[1])
        accumulator.add("b", gt, gt, classes=[1])
        write_report(accumulator, directory / "eval")
    return directory


def test_status_follows_the_run_directory(grid):
    out, cells = grid
    assert cell_status(out, cells[0]) == ("new", [])
    fake_run(out, cells[0], trained=False, checkpoint=False, scored=False)
    assert cell_status(out, cells[0]) == ("restart", [])
    fake_run(out, cells[1], trained=False, scored=False)
    assert cell_status(out, cells[1]) == ("resume", [])
    fake_run(out, cells[2], scored=False)
    assert cell_status(out, cells[2]) == ("score", [])
    fake_run(out, cells[3])
    assert cell_status(out, cells[3]) == ("done", [])
    other = copy.deepcopy(cells[4].config)  # seed 2, full
    other.optim.lr = 0.5
    fake_run(out, cells[5], config=other)  # cells[5]: seed 2, lora, lr 0.003
    assert cell_status(out, cells[5]) == ("stale", ["strategy.method: 'full' -> 'lora'", "optim.lr: 0.5 -> 0.003"])


def test_a_row_holds_the_runs_own_figures(grid):
    out, cells = grid
    fake_run(out, cells[0])
    row = cell_row(out, cells[0])
    assert row["status"] == "done" and row["n_cases"] == 2 and row["scored_on"] == "val"
    assert row["dice_mean"] == pytest.approx((2 / 3 + 1) / 2)
    assert row["dice_std"] == pytest.approx(np.std([2 / 3, 1]))
    assert row["iou_mean"] == pytest.approx((1 / 2 + 1) / 2)
    assert (row["trainable_parameters"], row["train_seconds"], row["peak_rss_mb"]) == (1234, 12.5, 321.0)
    assert row["strategy"] == "tiny_vit_test/decoder/full" and row["shots"] == "all" and row["hd95_n_inf"] == 0
    assert cell_row(out, cells[1])["status"] == "pending"
    record_failure(out, cells[1], "train", "out of memory", "Traceback ...")
    failed = cell_row(out, cells[1])
    assert (failed["status"], failed["error"], failed["dice_mean"]) == ("failed", "train: out of memory", None)


def test_finished_cells_give_measured_seconds_per_step(grid):
    out, cells = grid
    fake_run(out, cells[0])  # 12.5 s for 3 steps
    rates = measured_rates(cells, out)
    assert rates == {cell_kind(cells[0]): pytest.approx(12.5 / 3)}
    assert cell_kind(cells[2]) == cell_kind(cells[0])  # another seed of the same strategy costs the same
    estimate = estimate_cell(cells[2], 4, 2, 2, rates)
    assert estimate.basis == "measured" and estimate.seconds == pytest.approx(5 + 12.5 + 2 * 0.02)
    # Other kinds of cell: the table, scaled by how much slower this machine was than the table.
    scale = calibration(cells, out, {"discs": (4, 2)})
    assert scale == pytest.approx(12.5 / table_train_seconds(cells[0], 4, 2)) and scale > 1
    lora = estimate_cell(cells[1], 4, 2, 2, rates, scale)
    assert lora.basis == f"table x{scale:.2g}"
    assert lora.seconds == pytest.approx(5 + (table_train_seconds(cells[1], 4, 2) + 2 * 0.02) * scale)


def rows_for(cells, dice):
    """Rows with given Dice means (None = failed), per cell, as `collect_rows` gives them."""
    return [{"status": "done" if d is not None else "failed", "dice_mean": d, "dice_std": 0.01,
             "trainable_parameters": 1000 + 9000 * (c.method == "full")} for c, d in zip(cells, dice)]


def test_seeds_are_averaged_and_a_missing_seed_is_said(grid):
    out, cells = grid  # order: seed 0 (full, lora), seed 1 (...), seed 2 (...)
    dice = [0.6, 0.7, 0.8, None, 0.7, None]
    entries = {a.strategy: a for a in aggregate(cells, rows_for(cells, dice))}
    full, lora = entries["tiny_vit_test/decoder/full"], entries["tiny_vit_test/decoder/lora"]
    assert (full.dice, full.std) == (pytest.approx(0.7), pytest.approx(np.std([0.6, 0.8, 0.7])))
    assert (full.std_over, full.n_done) == ("seeds", 3)
    assert (lora.dice, lora.std, lora.std_over, lora.n_done, lora.n_failed) == (0.7, 0.01, "cases", 1, 2)
    table = format_table(list(entries.values()), None)
    assert table.splitlines()[2] == "| tiny_vit_test/decoder/full | 10.0K | **0.700 ± 0.082** | 1.5 |"
    assert table.splitlines()[3] == "| tiny_vit_test/decoder/lora | 1.0K | **0.700 ± 0.010** (1 of 3 seeds) | 1.5 |"


def test_ranks_share_ties_and_best_is_bold_per_column():
    assert ranks({"a": 0.9, "b": 0.8, "c": 0.9, "d": 0.1}) == {"a": 1.5, "c": 1.5, "b": 3.0, "d": 4.0}
    from samtune.study.results import Aggregate

    def entry(strategy, dataset, dice):
        return Aggregate(strategy, "bb", "decoder", strategy, dataset, None, dice, 0.0, "seeds", 2, 0, 2, 10)

    entries = [entry("x", "d1", 0.9), entry("y", "d1", 0.5), entry("x", "d2", 0.2), entry("y", "d2", 0.4),
               entry("z", "d1", 0.7), entry("z", "d2", None)]
    lines = format_table(entries, None).splitlines()
    assert lines[0] == "| strategy | trainable | d1 | d2 | mean (range) | mean rank |"
    assert lines[2] == "| x | 10 | **0.900 ± 0.000** | 0.200 ± 0.000 | 0.550 (0.200–0.900) | 1.5 |"  # ranks 1, 2
    assert lines[3] == "| y | 10 | 0.500 ± 0.000 | **0.400 ± 0.000** | 0.450 (0.400–0.500) | 2.0 |"  # ranks 3, 1
    assert lines[4] == "| z | 10 | 0.700 ± 0.000 | pending | - | 2.0 (1 of 2) |"


def test_results_markdown_says_what_it_shows(grid):
    out, cells = grid
    rows = rows_for(cells, [0.6, 0.7, 0.8, None, 0.7, None])
    for row, cell in zip(rows, cells):
        row.update(cell=cell.cell_id, error=None if row["dice_mean"] else "train: boom")
    text = format_results(aggregate(cells, rows), rows, "My study", {"val"}, "samtune study s.yaml --out o")
    assert text.startswith("# My study\n\nProduced by:\n\n```bash\nsamtune study s.yaml --out o\n```")
    assert "± the standard deviation over seeds, or over the scored cases where only one seed finished" in text
    assert "somewhat optimistic" in text
    assert f"## Failed cells (2)\n\n- `{cells[3].cell_id}`: train: boom" in text
