"""Estimated seconds of the inits a study makes itself (`samtune.study.inits`), for `--dry-run`."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

from samtune.engine.pretrain_config import PretrainConfig
from samtune.study.config import StudyConfig
from samtune.study.inits import Producer, producer_status, producers

def _done_steps(producer: Producer) -> int:
    from samtune.runs.layout import RunLayout
    from samtune.study.cost import saved_step

    return saved_step(RunLayout(producer.run_dir).state_file("last"))


def estimate_producer(producer: Producer, status: str):
    """Seconds left to make `producer` (`samtune.study.cost.Estimate`): the CPU table's figures
    (an encoder forward x the full fine-tuning step factor for each pretraining step, plus
    the fixed slices' reconstructions; a setup-2 run like a cell), measured once it is done."""
    import math
    from types import SimpleNamespace

    from samtune.study.cost import (
        CELL_OVERHEAD_S,
        case_slices,
        ENCODER_STEP_FACTOR,
        Estimate,
        count_slices,
        encoder_forward_seconds,
        table_train_seconds,
    )

    if status == "done":
        return Estimate(0.0, "measured")
    c = producer.config
    done = _done_steps(producer) if status == "resume" else 0
    forward = encoder_forward_seconds(c.model.name, c.model.image_size)
    if isinstance(c, PretrainConfig):
        per_step = c.optim.batch_size * c.optim.accumulation
        left = max(c.optim.steps - done, 0)
        validations = math.ceil(c.optim.steps / max(1, c.eval.every)) - done // max(1, c.eval.every)
        seconds = forward * ENCODER_STEP_FACTOR["full"] * per_step * left + validations * c.eval.images * forward
    else:
        def slices(value) -> int:
            if not value:
                return 0
            paths = [value] if isinstance(value, str) else [s.path for s in value]
            listed = producer.case_lists  # written when the producer starts: count from their rows
            return sum(sum(case_slices(Path(row[0]), c.data.axis) for row in listed[Path(path)])
                       if Path(path) in listed else count_slices(path, c.data.axis) for path in paths)

        seconds = table_train_seconds(cast(Any, SimpleNamespace(config=c)),  # reads only .config
                                      slices(c.data.train), slices(c.data.val), done)
    basis = "CPU table" if c.run.device == "cuda" else "table"
    return Estimate(CELL_OVERHEAD_S + seconds, basis)


def format_producers(config: StudyConfig, out_dir: str | Path) -> tuple[str, float]:
    """The dry-run lines of the inits made inside the study, and their seconds left."""
    from samtune.study.cost import format_seconds

    lines, total = [], 0.0
    for name, producer in producers(config, out_dir).items():
        status = producer_status(producer)
        estimate = estimate_producer(producer, status) if status != "stale" else None
        what = f"setup {3 if producer.kind == 'pretrain' else 2}: {producer.kind} {producer.config.optim.steps} steps"
        left = "-" if estimate is None or status == "done" else f"{format_seconds(estimate.seconds)} ({estimate.basis})"
        total += estimate.seconds if estimate is not None else 0.0
        lines.append(f"   -  inits.{name} ({what}) -> {producer.run_dir}  {status:<8}  {left}")
    return "\n".join(lines), total
