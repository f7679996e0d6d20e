"""`run_study(config, out_dir)`: run every cell of a study, then write its tables and plots.

    OUT/
      study.yaml          the resolved study configuration
      runs/<cell>/        one ordinary run directory per cell (`samtune.runs`),
        eval/             plus its scores: per_case.csv, summary.json (`samtune eval --run`)
      splits/<dataset>/   few-shot splits (train.csv, val.csv, split.json), when present
      failures/<cell>.json  error and traceback of each cell that failed
      results.csv         one row per cell
      results.md          the paper-style table
      *.png               plots (see `samtune.study.plots`)

Invoking the study again continues it: cells are skipped, resumed, scored or retried
according to their run directories (`samtune.study.state`). The tables are rewritten
after every cell, so they can be read while a study runs.

Each cell runs in a child process forked from a server that has imported torch once
(`isolate=True`, the default; see `samtune.study.cell_job`); ``isolate=False`` runs cells
in this process (for debugging; ``peak_rss_mb`` is then this process's peak so far).
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import threading
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from samtune.configs import save_config
from samtune.errors import DataError, UserError
from samtune.study.config import StudyConfig
from samtune.study.cost import (
    Estimate,
    calibration,
    checkpoint_step,
    count_slices,
    estimate_cell,
    format_seconds,
    measured_rates,
)
from samtune.study.grid import Cell, expand_cells
from samtune.study.state import (
    EVAL_DIR,
    cell_status,
    check_not_stale,
    clear_failure,
    describe_error,
    read_failure,
    record_failure,
    run_dir,
)

LOCK_FILE = ".study.lock"


@dataclass
class PlannedCell:
    cell: Cell
    status: str
    differences: list[str]
    failed_before: bool
    estimate: Estimate | None = None


@dataclass
class StudyOutcome:
    """What one invocation did; ``rows`` are the ``results.csv`` rows of every cell."""

    out_dir: Path
    rows: list[dict[str, Any]]
    ran: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)


def _dataset_slices(config: StudyConfig) -> dict[str, dict[str, int]]:
    from samtune.data.sources import load_source

    counts = {}
    for name, dataset in config.datasets.items():
        axis = dataset.axis if dataset.axis is not None else config.train.data.axis
        train_cases = load_source(dataset.train).cases
        counts[name] = {
            "train": count_slices(dataset.train, axis), "groups": len({c.group for c in train_cases}),
            "val": count_slices(dataset.val, axis), "test": count_slices(dataset.test, axis),
        }
    return counts


def plan_study(config: StudyConfig, out_dir: str | Path, estimates: bool = True) -> list[PlannedCell]:
    """Every cell with its status and (optionally) estimated cost; writes nothing."""
    out_dir = Path(out_dir)
    cells = expand_cells(config, out_dir)
    planned = [PlannedCell(cell, *cell_status(out_dir, cell), read_failure(out_dir, cell) is not None)
               for cell in cells]
    if estimates:
        counts = _dataset_slices(config)
        slices = {name: (c["train"], c["val"]) for name, c in counts.items()}
        rates = measured_rates(cells, out_dir)
        scale = calibration(cells, out_dir, slices)
        for entry in planned:
            c = counts[entry.cell.dataset]
            train = c["train"]
            if entry.cell.shots is not None and c["groups"]:
                train = round(train * min(entry.cell.shots, c["groups"]) / c["groups"])
            scored = c["test"] if entry.cell.score_source else c["val"]
            done = checkpoint_step(entry.cell, out_dir) if entry.status == "resume" else 0
            entry.estimate = estimate_cell(entry.cell, train, c["val"], scored, rates, scale, done)
    return planned


def running_pid(out_dir: str | Path) -> int | None:
    """The process of a `samtune study` now running in ``out_dir``, if any."""
    path = Path(out_dir) / LOCK_FILE
    try:
        pid = path.read_text().strip()
    except OSError:
        return None
    return int(pid) if pid.isdigit() and _alive(int(pid)) else None


def format_plan(planned: list[PlannedCell], running: int | None = None) -> str:
    """The dry-run listing: one line per cell, then the totals (``running``: the pid of a
    study running in the same folder, whose current cell shows as not done)."""
    width = max(len(p.cell.cell_id) for p in planned)
    lines = [f"{'#':>4}  {'cell':<{width}}  {'status':<8}  estimate"]
    remaining = 0.0
    for number, entry in enumerate(planned, start=1):
        status = entry.status + ("*" if entry.failed_before and entry.status != "done" else "")
        estimate = "-"
        if entry.estimate is not None and entry.status != "done":
            left = entry.estimate.seconds if entry.status != "score" else 0.0
            remaining += left
            estimate = f"{format_seconds(left)} ({entry.estimate.basis})" if entry.status != "score" else "scoring only"
        lines.append(f"{number:>4}  {entry.cell.cell_id:<{width}}  {status:<8}  {estimate}")
    counts = {s: sum(p.status == s for p in planned) for s in dict.fromkeys(p.status for p in planned)}
    lines.append("")
    lines.append(f"{len(planned)} cells: " + ", ".join(f"{n} {s}" for s, n in counts.items())
                 + f"; about {format_seconds(remaining)} of training left")
    lines.append("estimates: 'table' = 2-core CPU figures (samtune.study.cost; 'CPU table' for GPU cells: far too "
                 "high), 'table xF' = scaled by how fast this machine ran the finished cells, 'measured' = from "
                 "finished cells of the same kind; * = failed before (retried)")
    if running is not None:
        lines.append(f"a study is running in this folder (process {running}): its current cell shows as not done")
    return "\n".join(lines)


def write_cell_split(config: StudyConfig, cell: Cell) -> None:
    """The few-shot split of a cell (shared by the cells of its dataset, size and seed)."""
    from samtune.data.sources import load_source
    from samtune.data.split import Split, split_cases, write_split

    assert cell.split_dir is not None and cell.shots is not None
    if (cell.split_dir / "split.json").is_file():
        return
    dataset = config.datasets[cell.dataset]
    source = load_source(dataset.train)
    groups = len({case.group for case in source.cases})
    if cell.shots > groups:
        raise DataError(f"datasets.{cell.dataset}.train ({dataset.train}) has {groups} patient group(s), "
                        f"fewer than shots {cell.shots}")
    train = source.cases if cell.shots == groups else split_cases(source, cell.shots, cell.seed).train
    val = load_source(dataset.val).cases if dataset.val else []
    write_split(Split(train, val, cell.shots, cell.seed), cell.split_dir, source)


def cell_job(config: StudyConfig, out_dir: Path, cell: Cell, status: str) -> dict[str, Any]:
    """The picklable job of `samtune.study.cell_job.run_cell_job`."""
    action = {"new": "train", "restart": "restart", "resume": "resume", "score": "score"}[status]
    return {"run_dir": str(run_dir(out_dir, cell)), "config": asdict(cell.config), "action": action,
            "score_source": cell.score_source, "score": asdict(config.score), "eval_dir": EVAL_DIR}


_CONTEXT: Any = None


def _context() -> Any:
    """A forkserver context preloaded with the training stack (spawn off Linux)."""
    global _CONTEXT
    if _CONTEXT is None:
        if sys.platform.startswith("linux"):
            _CONTEXT = multiprocessing.get_context("forkserver")
            _CONTEXT.set_forkserver_preload(["samtune.study.cell_job", "samtune.study.runner"])
        else:
            _CONTEXT = multiprocessing.get_context("spawn")
    return _CONTEXT


def _watch_parent(lifeline: Any) -> None:
    """End this cell's process when the study process dies (its end of ``lifeline``
    closes), so that a killed study leaves no orphan writing into a run directory that
    the next invocation would resume. The run keeps its last checkpoint."""

    def watch() -> None:
        try:
            lifeline.recv()
        except (EOFError, OSError):
            pass
        os._exit(1)

    threading.Thread(target=watch, name="samtune-study-lifeline", daemon=True).start()


def _cell_process(job: dict[str, Any], connection: Any, lifeline: Any) -> None:
    """Child process entry: run the job, send its outcome back through ``connection``.

    Defined here, not in `cell_job`, so that this (parent) process never imports the
    training stack; the fork server has it preloaded for the child.
    """
    _watch_parent(lifeline)
    from samtune.study.cell_job import run_cell_job

    try:
        outcome = run_cell_job(job)
    except KeyboardInterrupt:
        outcome = {"ok": False, "stage": "interrupted", "error": "interrupted", "traceback": ""}
    connection.send(outcome)
    connection.close()


def run_job(job: dict[str, Any], isolate: bool = True) -> dict[str, Any]:
    """Run one cell's job in a child process (or here); the outcome dict of `run_cell_job`."""
    if not isolate:
        from samtune.study.cell_job import run_cell_job

        return run_cell_job(job)
    context = _context()
    receiver, sender = context.Pipe(duplex=False)
    lifeline, keep_alive = context.Pipe(duplex=False)  # never written: EOF tells the child we died
    process = context.Process(target=_cell_process, args=(job, sender, lifeline), name="samtune-study-cell")
    process.start()
    sender.close()
    lifeline.close()
    try:
        try:
            outcome = receiver.recv()
        except EOFError:  # the child died without answering
            outcome = None
        except KeyboardInterrupt:
            process.join(timeout=30)
            if process.is_alive():
                process.terminate()
            raise
        process.join()
    finally:
        keep_alive.close()
    if outcome is None:
        code = process.exitcode
        if code is not None and code < 0:
            why = f"killed by signal {-code}" + (" (out of memory?)" if code == -9 else "")
        else:
            why = f"exit code {code}"
        outcome = {"ok": False, "stage": "process", "error": f"the cell's process ended without a result ({why})",
                   "traceback": ""}
    if outcome.get("stage") == "interrupted":
        raise KeyboardInterrupt
    return outcome


class _Lock:
    """OUT/.study.lock: one invocation per study folder at a time."""

    def __init__(self, out_dir: Path):
        self.path = out_dir / LOCK_FILE

    def __enter__(self) -> "_Lock":
        try:
            handle = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            pid = self.path.read_text().strip()
            if pid.isdigit() and _alive(int(pid)):
                raise UserError(f"{self.path.parent} is in use by another `samtune study` (process {pid}); "
                                "wait for it, or give another --out") from None
            self.path.unlink(missing_ok=True)  # left by a process that is gone
            handle = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        os.write(handle, str(os.getpid()).encode())
        os.close(handle)
        return self

    def __exit__(self, *exc: Any) -> None:
        self.path.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def write_outputs(config: StudyConfig, out_dir: Path, cells: list[Cell], title: str, command: str | None,
                  plots: bool = True) -> tuple[list[dict[str, Any]], list[Path]]:
    """results.csv, results.md and (with ``plots``) the PNGs, from the run directories."""
    from samtune.study.results import aggregate, collect_rows, write_results_csv
    from samtune.study.table import format_results, write_results_md

    rows = collect_rows(out_dir, cells)
    aggregates = aggregate(cells, rows)
    files = [out_dir / "results.csv", out_dir / "results.md"]
    write_results_csv(rows, files[0])
    write_results_md(format_results(aggregates, rows, title, {c.scored_on for c in cells}, command), files[1])
    if plots:
        from samtune.study.plots import write_plots

        files += write_plots(aggregates, out_dir)
    return rows, files


def _outcome_line(row: dict[str, Any], seconds: float) -> str:
    if row["status"] == "done" and row["dice_mean"] is not None:
        return (f"Dice {row['dice_mean']:.4f} ± {row['dice_std']:.4f} on {row['scored_on']} "
                f"({row['n_cases']} cases) in {seconds:.0f}s")
    return f"{row['status']}: {row['error'] or ''}".rstrip(": ")


def run_study(config: StudyConfig, out_dir: str | Path, isolate: bool = True, title: str | None = None,
              command: str | None = None, log: Callable[[str], None] = print) -> StudyOutcome:
    """Run the cells that are not done, one at a time; write results.csv, results.md, plots.

    Raises UserError before running anything if a cell's run directory holds another
    configuration (see `samtune.study.state`). A failing cell is recorded and the
    study goes on; KeyboardInterrupt stops it (the tables are written first).

    With ``isolate`` (on Linux), cells start from a fork server, which re-imports the
    calling script as ``__mp_main__``: a script that calls `run_study` needs the usual
    ``if __name__ == "__main__":`` guard (the `samtune` command has it).
    """
    from samtune.study.results import cell_row

    from samtune.study.preflight import check_study_folder, preflight

    out_dir = Path(out_dir)
    check_study_folder(out_dir)
    planned = plan_study(config, out_dir, estimates=False)
    cells = [p.cell for p in planned]
    check_not_stale(out_dir, cells)
    preflight(config, out_dir, cells)  # values, strategies, data: before the folder exists
    out_dir.mkdir(parents=True, exist_ok=True)
    title = title or config.title or f"Study {out_dir.name}"
    outcome = StudyOutcome(out_dir, [])
    with _Lock(out_dir):
        save_config(config, out_dir / "study.yaml")
        try:
            for number, entry in enumerate(planned, start=1):
                cell = entry.cell
                if entry.status == "done":
                    outcome.skipped.append(cell.cell_id)
                    continue
                log(f"[{number}/{len(planned)}] {cell.cell_id}: {entry.status}")
                started = time.monotonic()
                try:
                    if cell.split_dir is not None:
                        write_cell_split(config, cell)
                except Exception as error:  # e.g. more shots than patients; the job reports its own errors
                    result = {"ok": False, "stage": "split", "error": describe_error(error),
                              "traceback": traceback.format_exc()}
                else:
                    result = run_job(cell_job(config, out_dir, cell, entry.status), isolate)
                if result["ok"]:
                    clear_failure(out_dir, cell)
                else:
                    record_failure(out_dir, cell, result["stage"], result["error"], result["traceback"])
                    outcome.failed.append(cell.cell_id)
                outcome.ran.append(cell.cell_id)
                log(f"  -> {_outcome_line(cell_row(out_dir, cell), time.monotonic() - started)}")
                write_outputs(config, out_dir, cells, title, command, plots=False)
        finally:
            outcome.rows, outcome.files = write_outputs(config, out_dir, cells, title, command)
    return outcome
