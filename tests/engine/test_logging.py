"""What a training run reports: the progress bar or lines, and TensorBoard events."""

import io
import json

import pytest

from samtune.engine.api import train
from samtune.engine.progress import Progress, format_seconds
from samtune.engine.trainer import Trainer
from tests.helpers.tiny_train import tiny_config


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_format_seconds():
    assert [format_seconds(s) for s in (0, 59.4, 61, 3725)] == ["0s", "59s", "1m01s", "1h02m"]


def test_progress_draws_a_bar_on_a_terminal():
    out = Terminal()
    progress = Progress(total=4, log_every=2, stream=out)
    progress.update(1, 2.0)
    progress.update(2, 4.0, loss=0.5)
    progress.validation(2, 0.8125, improved=True)
    progress.update(3, 6.0)
    progress.close()
    text = out.getvalue()
    # step 2 of 4 after 4 s: half the bar, ~4 s left; the validation line ends the bar first
    assert "\r[############............]  2/4  loss 0.5000  4s, ~4s left\x1b[K\n" in text
    assert "  validation at step 2: Dice 0.8125 (best)\n" in text
    assert text.endswith("\r[##################......]  3/4  loss 0.5000  Dice 0.812  6s, ~2s left\x1b[K\n")


def test_progress_prints_lines_into_a_file():
    out = io.StringIO()
    progress = Progress(total=5, log_every=2, stream=out)
    for step in range(1, 6):
        progress.update(step, 10.0 * step, loss=1.0 / step)
    progress.close()
    assert out.getvalue().splitlines() == [
        "step 2/5  loss 0.5000  20s, ~30s left",
        "step 4/5  loss 0.2500  40s, ~10s left",
        "step 5/5  loss 0.2000  50s, ~0s left",
    ]
    assert "\r" not in out.getvalue()


def scalars(run_dir, tag):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir / "tensorboard"))
    events.Reload()
    return [(e.step, e.value) for e in events.Scalars(tag)]


def purge_marks(run_dir):
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
    from tensorboard.compat.proto.event_pb2 import SessionLog

    return [event.step for path in sorted((run_dir / "tensorboard").iterdir())
            for event in EventFileLoader(str(path)).Load()
            if event.HasField("session_log") and event.session_log.status == SessionLog.START]


def test_tensorboard_mirrors_metrics_after_a_killed_and_resumed_run(disc_data, tmp_path, monkeypatch):
    pytest.importorskip("tensorboard")
    config = tiny_config(disc_data, run__checkpoint_every=4)
    run = tmp_path / "run"
    original = Trainer._micro_step

    def killed_after_step_5(self, micro):  # not a Ctrl-C: no checkpoint is written on the way out
        if self.step == 5:
            raise SystemExit("killed")
        return original(self, micro)

    monkeypatch.setattr(Trainer, "_micro_step", killed_after_step_5)
    with pytest.raises(SystemExit):
        train(config, run)
    assert [step for step, _ in scalars(run, "train/loss")] == [1, 2, 3, 4, 5]
    monkeypatch.setattr(Trainer, "_micro_step", original)
    train(None, run, resume=True)  # from the step-4 checkpoint: step 5 is trained again

    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    losses = [(r["step"], r["loss"]) for r in records if "loss" in r]
    dice = [(r["step"], r["val_dice"]) for r in records if "val_dice" in r]
    assert [step for step, _ in losses] == [1, 2, 3, 4, 5, 6] and [step for step, _ in dice] == [3, 6]
    logged = scalars(run, "train/loss")
    assert [step for step, _ in logged] == [1, 2, 3, 4, 5, 6]  # the killed run's step 5 was purged
    assert [value for _, value in logged] == pytest.approx([value for _, value in losses], rel=1e-6)
    assert purge_marks(run) == [5]  # the resumed writer's explicit purge point (not TensorBoard's guess)
    logged = scalars(run, "val/dice")
    assert [step for step, _ in logged] == [3, 6]
    assert [value for _, value in logged] == pytest.approx([value for _, value in dice], rel=1e-6)


def test_tensorboard_off_writes_no_events(disc_data, tmp_path):
    train(tiny_config(disc_data, optim__steps=2, run__tensorboard="off"), tmp_path / "run")
    assert (tmp_path / "run" / "metrics.jsonl").is_file()
    assert not (tmp_path / "run" / "tensorboard").exists()
