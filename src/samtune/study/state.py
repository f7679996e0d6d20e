"""Where each cell stands, read from its run directory, and the record of failed cells.

A study keeps no state of its own: a cell's progress is what its run directory holds.

- ``new``: no run directory (or an empty one).
- ``restart``: a run directory without a checkpoint (the run died before its first
  ``state/last.pt``): it is trained again from scratch, nothing of value is lost.
- ``resume``: a checkpoint but no ``summary.json`` (the run was interrupted): training
  continues from ``state/last.pt`` with `train(resume=True)`. The engine's data order and
  randomness are functions of the seed and step, so the resumed run reads exactly the
  samples an uninterrupted one would have read.
- ``score``: trained (``summary.json``) but not yet scored (no ``eval/summary.json``).
- ``done``: trained and scored; skipped.
- ``stale``: the run directory was trained with another configuration than the study
  now gives this cell (an edited YAML or ``--set``). Nothing is overwritten: the study
  stops before running anything and names the cell and the difference.

A cell that raised is recorded in ``OUT/failures/<cell>.json`` (the error line, the
stage, the traceback); the record is removed when a later invocation completes the cell.
Failed cells are retried on every invocation, since the cause (a missing file, memory)
may have been fixed.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from samtune.configs import from_dict
from samtune.engine.config import TrainConfig
from samtune.errors import UserError
from samtune.evaluation.report import SUMMARY_FILE as REPORT_SUMMARY
from samtune.runs import RunDir, RunLayout, write_json
from samtune.study.nnunet_study import SETTINGS_FILE

if TYPE_CHECKING:  # the functions here read cell_id, engine and config of a cell: annotations only
    from samtune.study.grid import Cell

EVAL_DIR = "eval"  # the scoring reports inside a cell's run directory
PEAK_GPU_FILE = "study_gpu.json"  # peak CUDA memory of the cell, when it used a GPU
STATUSES = ("new", "restart", "resume", "score", "done", "stale")


def run_dir(out_dir: Path, cell: Cell) -> Path:
    return Path(out_dir) / "runs" / cell.cell_id


def failure_path(out_dir: Path, cell: Cell) -> Path:
    return Path(out_dir) / "failures" / f"{cell.cell_id}.json"


def _flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def config_difference(saved: TrainConfig, planned: TrainConfig) -> list[str]:
    """'key: saved -> planned' for each value that differs."""
    old, new = _flatten(asdict(saved)), _flatten(asdict(planned))
    return [f"{key}: {old.get(key)!r} -> {new.get(key)!r}" for key in new if old.get(key) != new.get(key)]


def saved_config(directory: Path) -> TrainConfig | None:
    layout = RunLayout(directory)
    if not layout.config_path.is_file():
        return None
    return from_dict(TrainConfig, RunDir.open(directory).config_data(), str(layout.config_path))


def cell_status(out_dir: Path, cell: Cell) -> tuple[str, list[str]]:
    """(status, differences): one of `STATUSES`; differences only for ``stale``."""
    directory = run_dir(out_dir, cell)
    if cell.engine:  # nnU-Net v2: its own files (samtune.study.nnunet_study)
        return nnunet_status(directory, cell)
    layout = RunLayout(directory)
    if layout.is_empty():
        return "new", []
    has_checkpoint = layout.has_checkpoint()
    trained = layout.is_finished()
    if not (trained or has_checkpoint):
        return "restart", []
    saved = saved_config(directory)
    differences = config_difference(saved, cell.config) if saved is not None else ["config.yaml is missing"]
    if differences:
        return "stale", differences
    if not trained:
        return "resume", []
    if not (directory / EVAL_DIR / REPORT_SUMMARY).is_file():
        return "score", []
    return "done", []


def check_not_stale(out_dir: Path, cells: list[Cell]) -> None:
    """UserError naming the cells whose run directories hold another configuration."""
    stale = [(cell, diff) for cell in cells for status, diff in [cell_status(out_dir, cell)] if status == "stale"]
    if not stale:
        return
    cell, differences = stale[0]
    more = f" (and {len(stale) - 1} more cell(s))" if len(stale) > 1 else ""
    raise UserError(
        f"{run_dir(out_dir, cell)} was trained with another configuration than the study gives it now "
        f"({'; '.join(differences[:3])}){more}; use another --out, or delete those run directories to retrain them"
    )


def describe_error(error: BaseException) -> str:
    """One line: a user error's own message, else the exception type and message."""
    lines = str(error).strip().splitlines()
    text = lines[0] if lines else ""
    return text if isinstance(error, UserError) else f"{type(error).__name__}: {text}".rstrip(": ")


def record_failure(out_dir: Path, cell: Cell, stage: str, error: str, trace: str) -> None:
    write_json(failure_path(out_dir, cell), {"cell": cell.cell_id, "stage": stage, "error": error, "traceback": trace})


def read_failure(out_dir: Path, cell: Cell) -> dict[str, Any] | None:
    path = failure_path(out_dir, cell)
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise UserError(f"cannot read {path}: {error}; delete it to retry the cell") from None


def clear_failure(out_dir: Path, cell: Cell) -> None:
    failure_path(out_dir, cell).unlink(missing_ok=True)


def nnunet_status(directory: Path, cell: Any) -> tuple[str, list[str]]:
    """(status, differences) of an nnU-Net cell, as `cell_status` gives them:
    new, resume (nnU-Net's --c continues from its last checkpoint), score, done or stale."""
    if not directory.is_dir() or not any(directory.iterdir()):
        return "new", []
    path = directory / SETTINGS_FILE
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "stale", [f"{SETTINGS_FILE} is missing or unreadable"]
    planned = dict(cell.engine)
    differences = [f"{key}: {saved.get(key)!r} -> {value!r}" for key, value in planned.items()
                   if saved.get(key) != value]
    if differences:
        return "stale", differences
    if not RunLayout(directory).summary_path.is_file():
        return "resume", []
    if not (directory / EVAL_DIR / REPORT_SUMMARY).is_file():
        return "score", []
    return "done", []
