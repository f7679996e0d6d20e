"""End to end: a 2 x 2 grid (components x methods) of `tiny_vit_test` on a disc dataset, run
through `run_study` with one process per cell. LoRA is asked for an encoder block the model
lacks, so the encoder+decoder LoRA cell fails while the others finish."""

from __future__ import annotations

import csv
import json
import shutil

import numpy as np
import pytest
import torch
from tests.helpers.tiny_study import study_dict, write_study

from samtune.cli.main import main
from samtune.errors import UserError
from samtune.inference.run_eval import evaluate_run
from samtune.study.preflight import load_study
from samtune.study.runner import run_study

CELLS = [
    f"discs__tiny_vit_test__{component}__{method}__seed0"
    for component in ("decoder", "encoder_decoder") for method in ("full", "lora")
]
GOOD, BROKEN = CELLS[:3], CELLS[3:]


def read_rows(out):
    with open(out / "results.csv", newline="") as handle:
        return {row["cell"]: row for row in csv.DictReader(handle)}


@pytest.fixture(scope="module")
def study(disc_sources, tmp_path_factory):
    root = tmp_path_factory.mktemp("study")
    data = study_dict(disc_sources, per_method={"lora": ["strategy.options.blocks=[40]"]})  # the decoder ignores blocks
    path = write_study(root / "tiny.yaml", data)
    out = root / "out"
    outcome = run_study(load_study(path), out, log=lambda line: None)
    return {"path": path, "out": out, "outcome": outcome, "data": data}


def test_every_cell_has_a_row_and_the_failing_one_is_recorded(study):
    rows = read_rows(study["out"])
    assert list(rows) == CELLS  # seed, then dataset, backbone, component, method
    assert [rows[c]["status"] for c in CELLS] == ["done", "done", "done", "failed"]
    assert study["outcome"].failed == BROKEN and study["outcome"].ran == CELLS
    (cell,) = BROKEN
    assert rows[cell]["error"] == "train: options.blocks: block 40 does not exist; this image encoder has 3 " \
        "transformer blocks (0..2)"
    record = json.loads((study["out"] / "failures" / f"{cell}.json").read_text(encoding="utf-8"))
    assert record["stage"] == "train" and "ConfigError" in record["traceback"]
    assert rows[cell]["dice_mean"] == "" and rows[cell]["trainable_parameters"] == ""
    markdown = (study["out"] / "results.md").read_text(encoding="utf-8")
    assert f"## Failed cells (1)\n\n- `{cell}`: train: options.blocks" in markdown


def test_table_numbers_equal_the_per_run_metrics(study, tmp_path, keep_torch_threads):
    torch.set_num_threads(1)
    rows = read_rows(study["out"])
    for cell in GOOD:
        row, run = rows[cell], study["out"] / "runs" / cell
        summary = json.loads((run / "summary.json").read_text(encoding="utf-8"))
        assert int(row["trainable_parameters"]) == summary["trainable_parameters"] > 0
        assert int(row["total_parameters"]) == summary["total_parameters"]
        assert float(row["train_seconds"]) == summary["train_seconds"]
        assert float(row["peak_rss_mb"]) == summary["peak_rss_mb"] > 0
        assert int(row["steps"]) == 3 and row["scored_on"] == "val" and row["shots"] == "all"
        # Score the run again, independently, on the dataset's validation source.
        check = evaluate_run(run, tmp_path / cell, data=study["data"]["datasets"]["discs"]["val"])
        dice = [r["dice"] for r in check.accumulator.per_case_rows()]
        assert float(row["dice_mean"]) == pytest.approx(np.mean(dice), abs=1e-12)
        assert float(row["dice_std"]) == pytest.approx(np.std(dice), abs=1e-12)
        iou = [r["iou"] for r in check.accumulator.per_case_rows()]
        assert float(row["iou_mean"]) == pytest.approx(np.mean(iou), abs=1e-12)
        assert int(row["n_cases"]) == 2


def test_markdown_table_has_strategies_as_rows_best_in_bold_and_ranks(study):
    rows = read_rows(study["out"])
    dice = {rows[c]["strategy"]: float(rows[c]["dice_mean"]) for c in GOOD}
    lines = (study["out"] / "results.md").read_text(encoding="utf-8").splitlines()
    header = next(line for line in lines if line.startswith("| strategy"))
    assert header == "| strategy | trainable | discs | mean rank |"
    table = {line.split(" | ")[0][2:]: line for line in lines if line.startswith("| tiny_vit_test/")}
    assert list(table) == list(dice) + ["tiny_vit_test/encoder+decoder/lora"]
    assert table["tiny_vit_test/encoder+decoder/lora"].endswith("| - | failed | - |")
    best = max(dice.values())
    for cell in GOOD:
        strategy, value = rows[cell]["strategy"], float(rows[cell]["dice_mean"])
        text = f"{value:.3f} ± {float(rows[cell]['dice_std']):.3f}"
        assert (f"| **{text}** |" in table[strategy]) == (value == best)
        trainable = int(rows[cell]["trainable_parameters"])
        assert f"| {trainable / 1e3:.1f}K |" in table[strategy] or f"| {trainable} |" in table[strategy]
        rank = 1 + sum(v > value for v in dice.values()) + (sum(v == value for v in dice.values()) - 1) / 2
        assert table[strategy].endswith(f"| {rank:.1f} |")
    for name in ("dice_by_strategy.png", "dice_vs_parameters.png"):
        assert (study["out"] / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not (study["out"] / "dice_vs_shots.png").exists()


def test_second_invocation_skips_finished_cells_and_retries_failed_ones(study, keep_torch_threads):
    out = study["out"]
    def stamps():
        return {c: [(out / "runs" / c / name).stat().st_mtime_ns for name in ("summary.json", "eval/summary.json")]
                for c in GOOD}

    before_stamps = stamps()
    before = read_rows(out)
    outcome = run_study(load_study(study["path"]), out, log=lambda line: None)
    assert outcome.skipped == GOOD and outcome.ran == BROKEN
    assert stamps() == before_stamps
    after = read_rows(out)
    assert all(after[c] == before[c] for c in GOOD)

    # An interrupted cell (checkpoint, no summary) resumes; a trained, unscored one is scored,
    # here in this process (isolate=False).
    (out / "runs" / GOOD[1] / "summary.json").unlink()
    shutil.rmtree(out / "runs" / GOOD[1] / "eval")
    outcome = run_study(load_study(study["path"]), out, log=lambda line: None)
    assert outcome.ran == [GOOD[1]] + BROKEN
    shutil.rmtree(out / "runs" / GOOD[0] / "eval")
    outcome = run_study(load_study(study["path"]), out, log=lambda line: None, isolate=False)
    assert outcome.ran == [GOOD[0]] + BROKEN and sorted(outcome.failed) == sorted(BROKEN)
    again = read_rows(out)
    for cell in GOOD[:2]:
        assert again[cell]["status"] == "done" and again[cell]["dice_mean"] == before[cell]["dice_mean"]


def test_a_changed_configuration_is_refused_not_overwritten(study):
    with pytest.raises(UserError, match=r"another configuration.*optim\.steps: 3 -> 4"):
        run_study(load_study(study["path"], ["train.optim.steps=4"]), study["out"], log=lambda line: None)


def test_dry_run_lists_cells_with_status_and_estimates(study, capsys, tmp_path):
    assert main(["study", str(study["path"]), "--out", str(study["out"]), "--dry-run"]) == 0
    listing = capsys.readouterr().out
    status = {line.split()[1]: line.split()[2] for line in listing.splitlines()[2:6]}
    # * = failed before; the failed cell left no run directory (train validates, then writes)
    assert status == {**dict.fromkeys(GOOD, "done"), **dict.fromkeys(BROKEN, "new*")}
    assert "4 cells: 3 done, 1 new" in listing
    fresh = tmp_path / "fresh"
    assert main(["study", str(study["path"]), "--out", str(fresh), "--dry-run"]) == 0
    listing = capsys.readouterr().out
    assert listing.count("(table)") == 4 and "4 cells: 4 new" in listing
    assert not fresh.exists()  # a dry run writes nothing
