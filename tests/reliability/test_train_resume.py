"""`samtune train --resume` on a finished run (issue 12, item 7)."""

from __future__ import annotations

import json
import shutil

from samtune.cli.main import main


def _steps(run):
    return [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines() if "loss" in line]


def test_finished_run_says_so_and_continues_with_more_steps(automatic_run, tmp_path, capsys, one_thread, refused):
    run = tmp_path / "run"
    shutil.copytree(automatic_run, run)  # the shared session run stays as it is
    metrics = (run / "metrics.jsonl").read_text()

    assert main(["train", "--resume", str(run)]) == 0
    out = capsys.readouterr().out
    assert f"{run} already finished: 3 of 3 steps" in out
    assert f"samtune train --resume {run} --set optim.steps=6" in out and "trained" not in out
    assert (run / "metrics.jsonl").read_text() == metrics  # nothing ran

    refused(["train", "--resume", run, "--set", "optim.steps=3"], watch=[run], names=["optim.steps=3"])

    assert main(["train", "--resume", str(run), "--set", "optim.steps=5"]) == 0
    assert "trained 5 steps" in capsys.readouterr().out
    assert _steps(run) == [1, 2, 3, 4, 5]
    assert json.loads((run / "summary.json").read_text())["steps"] == 5


def test_near_zero_dice_gets_a_hint(automatic_run):
    from samtune.cli.train import low_dice_hint

    hint = low_dice_hint(0.0123, str(automatic_run))
    assert hint.startswith("validation Dice stayed near zero (best 0.0123)")
    assert "optim.steps is 3" in hint and f"--resume {automatic_run} --set optim.steps=6" in hint
    assert "optim.lr is 0.003" in hint
    assert low_dice_hint(0.2, str(automatic_run)) is None and low_dice_hint(None, str(automatic_run)) is None
