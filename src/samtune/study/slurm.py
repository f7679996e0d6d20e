"""`samtune study --executor slurm`: the study's cells as one SLURM job array, through submitit.

    pip install 'samtune[slurm]'
    samtune study full_gpu --out /shared/studies/mine --executor slurm \
        --set executor.partition=gpu --set executor.gpus_per_node=1 --set executor.timeout_min=240

Resources come from the study's ``executor:`` section (`samtune.study.config.ExecutorConfig`).
The submitting process writes the study.yaml and the splits, submits every cell that is
not done (and not held by a live worker) as one array (at most ``array_parallelism``
running at once), records the job ids in ``OUT/slurm/jobs.json`` and waits; logs and
submitit's records are in ``OUT/slurm/<job id>/``. Each job (`CellTask`) takes the cell's
lock (`samtune.study.locks`), reads where the cell stands from its run directory (train,
resume from ``state/last.pt``, score), runs it in the job's process and records a
failure like the local executor. A job that reaches its time limit or is preempted is
requeued by submitit (``checkpoint``; up to ``max_requeues`` times) and resumes from the
run's last checkpoint; its requeued attempt recognises its own earlier lock. A job that
dies otherwise (killed, node failure) is recorded as failed, and the next invocation of
the same command resumes the cell. ``gpus_per_node`` above 1 runs one task per GPU and
trains the cell with DDP (the torch distributed variables are exported from SLURM's).

``executor.cluster: local`` runs the same jobs with submitit's local executor (real
subprocesses on this machine, no scheduler), which is how the tests exercise this path.
Nothing here schedules anything itself.
"""

from __future__ import annotations

import json
import traceback
from pathlib import Path
from typing import Any, Callable

from samtune.runs import write_json
from samtune.errors import UserError
from samtune.study.config import StudyConfig
from samtune.study.grid import Cell
from samtune.study.state import cell_status, check_not_stale, clear_failure, describe_error, read_failure, record_failure

SLURM_DIR = "slurm"
JOBS_FILE = "jobs.json"
ACTIONS = {"new": "train", "restart": "restart", "resume": "resume", "score": "score"}


def require_submitit() -> Any:
    """The submitit module, or a one-line UserError saying how to install it."""
    try:
        import submitit
    except ImportError:
        raise UserError("--executor slurm needs the submitit package: pip install 'samtune[slurm]' "
                        "(or pip install submitit), or run the cells here with --executor local") from None
    return submitit


class CellTask:
    """One cell as a submitit job: picklable, checkpointable (requeued on timeout/preemption)."""

    def __init__(self, out_dir: str, cell: Cell, job: dict[str, Any]):
        self.out_dir, self.cell, self.job = out_dir, cell, job

    def __call__(self) -> dict[str, Any]:
        import submitit

        from samtune.study.cell_job import run_cell_job
        from samtune.study.locks import CellLock

        environment = submitit.JobEnvironment()
        if environment.num_tasks > 1:  # one task per GPU: torch.distributed from SLURM's variables
            submitit.helpers.TorchDistributedEnvironment().export(set_cuda_visible_devices=True)
            if environment.global_rank != 0:  # only rank 0 locks, scores and records
                return run_cell_job({**self.job, "action": self._action() or "score", "train_only": True})
        out_dir, where = Path(self.out_dir), f"{environment.cluster} job {environment.job_id}"
        lock = CellLock(out_dir, self.cell.cell_id, where=where)
        if not lock.acquire(reclaim=lambda owner: owner.where == where):  # our own earlier attempt
            return {"ok": True, "busy": True}
        try:
            action = self._action()
            if action is None:
                return {"ok": True}
            result = run_cell_job({**self.job, "action": action})
            if result["ok"]:
                clear_failure(out_dir, self.cell)
            else:
                record_failure(out_dir, self.cell, result["stage"], result["error"], result["traceback"])
            return result
        finally:
            lock.release()

    def _action(self) -> str | None:
        status, differences = cell_status(Path(self.out_dir), self.cell)
        if status == "stale":
            raise UserError(f"{self.cell.cell_id} was trained with another configuration ({'; '.join(differences[:3])})")
        return None if status == "done" else ACTIONS[status]

    def checkpoint(self, *args: Any, **kwargs: Any) -> Any:
        """Called by submitit at the time limit or on preemption: requeue this same task.
        The run directory holds the training state (``state/last.pt``, saved every
        ``run.checkpoint_every`` steps), so the requeued job resumes from there."""
        import submitit

        return submitit.helpers.DelayedSubmission(CellTask(self.out_dir, self.cell, self.job))


def make_executor(config: StudyConfig, out_dir: Path) -> Any:
    """A submitit executor with the study's resources."""
    submitit = require_submitit()
    resources = config.executor
    cluster = resources.cluster
    executor = submitit.AutoExecutor(folder=out_dir / SLURM_DIR / "%j", cluster=cluster,
                                     **{f"{cluster}_max_num_timeout": resources.max_requeues})
    tasks = max(1, resources.gpus_per_node)
    parameters: dict[str, Any] = {
        "name": f"samtune-{out_dir.name}", "timeout_min": resources.timeout_min, "cpus_per_task": resources.cpus_per_task,
        "mem_gb": resources.mem_gb, "gpus_per_node": resources.gpus_per_node, "tasks_per_node": tasks, "nodes": 1,
    }
    if cluster == "slurm":
        slurm = {"partition": resources.partition, "account": resources.account, "qos": resources.qos,
                 "constraint": resources.constraint, "array_parallelism": resources.array_parallelism,
                 "setup": resources.setup or None, "additional_parameters": dict(resources.additional) or None}
        parameters.update({f"slurm_{k}": v for k, v in slurm.items() if v is not None})
    executor.update_parameters(**parameters)
    return executor


def jobs_path(out_dir: Path) -> Path:
    return Path(out_dir) / SLURM_DIR / JOBS_FILE


def read_jobs(out_dir: Path) -> dict[str, dict[str, str]]:
    """``OUT/slurm/jobs.json``: cell -> {job_id, cluster, folder} of its latest submission."""
    path = jobs_path(out_dir)
    try:
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    except (OSError, ValueError):
        return {}


def run_study_slurm(config: StudyConfig, out_dir: str | Path, command: str | None = None,
                    log: Callable[[str], None] = print, wait: bool = True) -> Any:
    """Submit the cells that are not done as one job array; wait and write the tables.

    Returns a `StudyOutcome` (``ran``: the cells submitted) with ``jobs`` added (cell id
    -> submitit job). With ``wait=False`` it returns right after submitting.
    """
    from samtune.study.preflight import check_study_folder, preflight
    from samtune.study.runner import StudyOutcome, plan_study, write_cell_split

    require_submitit()
    out_dir = Path(out_dir)
    check_study_folder(out_dir)
    planned = plan_study(config, out_dir, estimates=False)
    cells = [p.cell for p in planned]
    check_not_stale(out_dir, cells)
    preflight(config, out_dir, cells)  # as the local executor: values, strategies, data, before the folder exists
    from samtune.study.inits import producer_status, producers

    pending = [name for name, p in producers(config, out_dir).items() if producer_status(p) != "done"]
    if pending:  # the array's jobs would all start before them; made inside the study by a local run
        raise UserError(f"inits {', '.join(pending)} are recipes not made yet: a local run of the study "
                        "(--executor local) makes them before any cell (stop it once the cells start), then "
                        "submit the cells with --executor slurm")
    out_dir.mkdir(parents=True, exist_ok=True)
    from samtune.configs import save_config

    save_config(config, out_dir / "study.yaml")
    outcome = StudyOutcome(out_dir, [])
    submit = []
    for entry in planned:
        if entry.status == "done":
            outcome.skipped.append(entry.cell.cell_id)
        elif entry.running is not None:
            outcome.busy.append(entry.cell.cell_id)
            log(f"{entry.cell.cell_id}: running on {entry.running}; left to it")
        else:
            try:  # splits are written here, once, not raced by the jobs
                if entry.cell.split_dir is not None:
                    write_cell_split(config, entry.cell)
            except Exception as error:
                record_failure(out_dir, entry.cell, "split", describe_error(error), traceback.format_exc())
                outcome.failed.append(entry.cell.cell_id)
                continue
            submit.append(entry)
    from samtune.study.runner import cell_job

    executor = make_executor(config, out_dir)
    jobs: dict[str, Any] = {}
    if submit:
        with executor.batch():  # one array
            submitted = [executor.submit(CellTask(str(out_dir), e.cell, cell_job(config, out_dir, e.cell, "new")))
                         for e in submit]
        records = read_jobs(out_dir)
        for entry, job in zip(submit, submitted):
            jobs[entry.cell.cell_id] = job
            records[entry.cell.cell_id] = {"job_id": str(job.job_id), "cluster": config.executor.cluster,
                                           "folder": str(job.paths.folder)}
        write_json(jobs_path(out_dir), records)
        log(f"submitted {len(submit)} cell(s) as {config.executor.cluster} job array "
            f"{str(submitted[0].job_id).split('_')[0]} (logs in {out_dir / SLURM_DIR})")
    outcome.ran = list(jobs)
    outcome.jobs = jobs  # type: ignore[attr-defined]
    if not wait:
        return outcome
    return wait_for_jobs(config, out_dir, outcome, command, log)


def wait_for_jobs(config: StudyConfig, out_dir: Path, outcome: Any, command: str | None = None,
                  log: Callable[[str], None] = print) -> Any:
    """Wait for the submitted jobs (``outcome.jobs``), record those that died, write the tables."""
    from samtune.study.runner import plan_study, write_outputs

    cells = [p.cell for p in plan_study(config, out_dir, estimates=False)]
    title = config.title or f"Study {out_dir.name}"
    for cell_id, job in outcome.jobs.items():
        cell = next(c for c in cells if c.cell_id == cell_id)
        try:
            result = job.result()
        except Exception as error:  # the job died (killed, node failure, out of requeues)
            if cell_status(out_dir, cell)[0] != "done" and read_failure(out_dir, cell) is None:
                record_failure(out_dir, cell, "job", f"{config.executor.cluster} job {job.job_id} ended without a "
                               f"result ({describe_error(error)}); run the study again to resume the cell",
                               traceback.format_exc())
            result = {"ok": False}
        if not result.get("ok"):
            outcome.failed.append(cell_id)
        log(f"  -> {cell_id}: {'done' if result.get('ok') else 'failed'}")
    outcome.rows, outcome.files = write_outputs(config, out_dir, cells, title, command)
    return outcome
