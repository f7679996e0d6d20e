"""`samtune study --status OUT`: where every cell of a study stands, read from its folder.

Per cell, from the run directories, the lock files, the failure records and the
submitit job records (``OUT/slurm/jobs.json``); nothing is written and no scheduler is
asked, so it works from any machine that sees the folder:

- ``done`` (with its Dice), ``failed`` (the stage and the error line),
- ``running`` on a host and process (and which worker, GPU or SLURM job),
- ``queued`` (submitted as a job that has not started the cell yet),
- ``interrupted`` (a checkpoint, to resume), ``trained`` (scoring left), ``not started``,
- ``stale`` (its run directory holds another configuration).
"""

from __future__ import annotations

import json
from pathlib import Path

from samtune.errors import UserError

LABELS = {"new": "not started", "restart": "not started", "resume": "interrupted (resumes from its checkpoint)",
          "score": "trained, not scored", "stale": "stale (another configuration)"}


def _submitted_finished(record: dict) -> bool:
    """Whether submitit recorded an end for the job (a result or error pickle)."""
    folder = Path(record.get("folder", ""))
    return any(folder.glob(f"{record.get('job_id')}_*_result.pkl")) if folder.is_dir() else False


def study_status(out_dir: str | Path) -> str:
    """The status table of the study in ``out_dir`` (module docstring)."""
    from samtune.study.config import load_study
    from samtune.study.runner import plan_study
    from samtune.study.slurm import read_jobs
    from samtune.study.state import EVAL_DIR, read_failure, run_dir

    out_dir = Path(out_dir)
    saved = out_dir / "study.yaml"
    if not saved.is_file():
        raise UserError(f"{out_dir} is not a study folder (no study.yaml); give the --out of a `samtune study`")
    planned = plan_study(load_study(saved), out_dir, estimates=False)
    jobs = read_jobs(out_dir)
    width = max(len(p.cell.cell_id) for p in planned)
    lines = [f"{'cell':<{width}}  state"]
    counts: dict[str, int] = {}
    for entry in planned:
        cell = entry.cell
        failure = read_failure(out_dir, cell)
        job = jobs.get(cell.cell_id)
        if entry.status == "done":
            state, detail = "done", ""
            try:
                summary = json.loads((run_dir(out_dir, cell) / EVAL_DIR / "summary.json").read_text(encoding="utf-8"))
                detail = f"Dice {summary['mean_over_classes']['dice']:.4f}"
            except (OSError, ValueError, KeyError, TypeError):
                pass
        elif entry.running is not None:
            state, detail = "running", f"on {entry.running}"
        elif failure is not None:
            state, detail = "failed", f"{failure['stage']}: {failure['error']}"
        elif job is not None and not _submitted_finished(job):
            state, detail = "queued", f"{job.get('cluster', 'slurm')} job {job['job_id']}"
        else:
            state, detail = LABELS[entry.status], ""
        key = state.split(" (")[0]
        counts[key] = counts.get(key, 0) + 1
        lines.append(f"{cell.cell_id:<{width}}  {state}" + (f": {detail}" if detail else ""))
    lines.append("")
    lines.append(f"{len(planned)} cells: " + ", ".join(f"{n} {s}" for s, n in counts.items()))
    return "\n".join(lines)
