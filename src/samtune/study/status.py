"""`samtune study --status OUT`: where every cell of a study stands, read from its folder.

Per cell, from the run directories, the lock files, the failure records and the
submitit job records (``OUT/slurm/jobs.json``); nothing is written and no scheduler is
asked, so it works from any machine that sees the folder. The counts come first, then
one row per cell (its id is its run directory's name under ``OUT/runs/``):

- ``done`` with its Dice and the source it was scored on,
- ``running``: the step reached, for how long, where (host, process, worker, GPU or
  SLURM job) and when its lock's heartbeat was last seen,
- ``queued`` (submitted as a job that has not started the cell yet),
- ``failed``: the stage and the error line (the traceback is in ``OUT/failures/``),
- ``interrupted`` (the step it stopped at; resumes from its checkpoint), ``trained``
  (scoring left), ``not started``, ``stale`` (its run holds another configuration),

and a last line on what running the same command again does.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING

from samtune.errors import UserError

if TYPE_CHECKING:
    from samtune.study.grid import Cell
    from samtune.study.runner import PlannedCell

STATES = {"new": "not started", "restart": "not started", "resume": "interrupted",
          "score": "trained", "stale": "stale"}
ORDER = ("failed", "running", "queued", "interrupted", "trained", "not started", "stale", "done")


def _submitted_finished(record: dict) -> bool:
    """Whether submitit recorded an end for the job (a result or error pickle)."""
    folder = Path(record.get("folder", ""))
    return any(folder.glob(f"{record.get('job_id')}_*_result.pkl")) if folder.is_dir() else False


def _ago(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def _last_step(run: Path) -> int | None:
    """The last step logged in the run's metrics.jsonl (None before the first log)."""
    try:
        lines = (run / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    except OSError:
        return None
    for line in reversed(lines):
        try:
            return int(json.loads(line)["step"])
        except (ValueError, KeyError, TypeError):
            continue
    return None


def _running(out_dir: Path, cell: Cell, where: str, now: float) -> str:
    from samtune.study.locks import lock_path, read_owner
    from samtune.study.state import run_dir

    step = _last_step(run_dir(out_dir, cell))
    parts = [f"step {step}/{cell.config.optim.steps}" if step is not None else "starting"]
    path = lock_path(out_dir, cell.cell_id)
    owner = read_owner(path)
    if owner is not None:
        parts.append(f"for {_ago(now - owner.started)}")
    parts.append(f"on {where}")
    try:
        parts.append(f"heartbeat {_ago(now - path.stat().st_mtime)} ago")
    except OSError:
        pass
    return ", ".join(parts)


def _row(out_dir: Path, entry: PlannedCell, jobs: dict, now: float) -> tuple[str, str]:
    """(state, detail) of one planned cell."""
    from samtune.study.state import EVAL_DIR, failure_path, read_failure, run_dir

    cell = entry.cell
    if entry.status == "done":
        try:
            summary = json.loads((run_dir(out_dir, cell) / EVAL_DIR / "summary.json").read_text(encoding="utf-8"))
            return "done", f"Dice {summary['mean_over_classes']['dice']:.4f} on {cell.scored_on}"
        except (OSError, ValueError, KeyError, TypeError):
            return "done", ""
    if entry.running is not None:
        return "running", _running(out_dir, cell, entry.running, now)
    failure = read_failure(out_dir, cell)
    if failure is not None:
        error = " ".join(str(failure.get("error", "")).split())
        error = error if len(error) <= 160 else error[:157] + "..."
        where = failure_path(out_dir, cell).relative_to(out_dir)
        return "failed", f"{failure.get('stage', '?')}: {error} (traceback: {where})"
    job = jobs.get(cell.cell_id)
    if job is not None and not _submitted_finished(job):
        return "queued", f"{job.get('cluster', 'slurm')} job {job['job_id']}"
    state = STATES[entry.status]
    if state == "interrupted":
        step = _last_step(run_dir(out_dir, cell))
        return state, (f"stopped near step {step}/{cell.config.optim.steps}; " if step else "") + \
            "resumes from its checkpoint"
    if state == "trained":
        return state, "scoring left"
    if state == "stale":
        return state, "its run directory holds another configuration: " + "; ".join(entry.differences[:2])
    return state, ""


def study_status(out_dir: str | Path) -> str:
    """The status table of the study in ``out_dir`` (module docstring)."""
    from samtune.study.preflight import load_study
    from samtune.study.runner import plan_study
    from samtune.study.slurm import read_jobs

    out_dir = Path(out_dir)
    saved = out_dir / "study.yaml"
    if not saved.is_file():
        raise UserError(f"{out_dir} is not a study folder (no study.yaml); give the --out of a `samtune study`")
    planned = plan_study(load_study(saved), out_dir, estimates=False)
    jobs, now = read_jobs(out_dir), time.time()
    rows = [(entry.cell.cell_id, *_row(out_dir, entry, jobs, now)) for entry in planned]
    counts = {state: sum(r[1] == state for r in rows) for state in ORDER}
    summary = ", ".join(f"{n} {state}" for state, n in counts.items() if n)
    width = max([len("cell")] + [len(r[0]) for r in rows])
    state_width = max([len("state")] + [len(r[1]) for r in rows])
    lines = [f"{out_dir}: {len(rows)} cell{'s' if len(rows) != 1 else ''}: {summary}", "",
             f"{'cell':<{width}}  {'state':<{state_width}}  detail"]
    lines += [f"{cell:<{width}}  {state:<{state_width}}  {detail}".rstrip() for cell, state, detail in rows]
    todo = len(rows) - counts["done"]
    if todo and not counts["running"] and not counts["queued"]:  # nothing is working on it now
        lines += ["", f"Running the same `samtune study ... --out {out_dir}` command again runs the {todo} cell(s) "
                  "not done (failed ones retried, interrupted ones resumed)."]
    return "\n".join(lines)
