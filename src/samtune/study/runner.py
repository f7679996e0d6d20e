"""`run_study(config, out_dir)`: run every cell of a study, then write its tables and plots.

    OUT/
      study.yaml          the resolved study configuration
      runs/<cell>/        one ordinary run directory per cell (`samtune.runs`),
        eval/             plus its scores: per_case.csv, summary.json (`samtune eval --run`)
      splits/<dataset>/   few-shot splits (train.csv, val.csv, split.json), when present
      failures/<cell>.json  error and traceback of each cell that failed
      locks/<cell>.lock   who runs the cell now (`samtune.study.locks`)
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
from samtune.study.executors import track, untrack
from samtune.study.grid import Cell, expand_cells
from samtune.study.inits import InitMaker
from samtune.study.locks import holder
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

@dataclass
class PlannedCell:
    cell: Cell
    status: str
    differences: list[str]
    failed_before: bool
    estimate: Estimate | None = None
    running: str | None = None  # who holds the cell's lock (`samtune.study.locks`), if anyone


@dataclass
class StudyOutcome:
    """What one invocation did; ``rows`` are the ``results.csv`` rows of every cell."""

    out_dir: Path
    rows: list[dict[str, Any]]
    ran: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    busy: list[str] = field(default_factory=list)  # held by another worker or invocation: left to it
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
    for entry in planned:
        owner = holder(out_dir, entry.cell.cell_id)
        entry.running = owner.describe() if owner is not None else None
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


def format_plan(planned: list[PlannedCell]) -> str:
    """The dry-run listing: one line per cell, then the totals (a cell some worker holds
    shows where it runs)."""
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
        if entry.running and entry.status != "done":
            estimate += f"; running on {entry.running}"
        lines.append(f"{number:>4}  {entry.cell.cell_id:<{width}}  {status:<8}  {estimate}")
    counts = {s: sum(p.status == s for p in planned) for s in dict.fromkeys(p.status for p in planned)}
    lines.append("")
    lines.append(f"{len(planned)} cells: " + ", ".join(f"{n} {s}" for s, n in counts.items())
                 + f"; about {format_seconds(remaining)} of training left")
    lines.append("estimates: 'table' = 2-core CPU figures (samtune.study.cost; 'CPU table' for GPU cells: far too "
                 "high), 'table xF' = scaled by how fast this machine ran the finished cells, 'measured' = from "
                 "finished cells of the same kind; * = failed before (retried)")
    return "\n".join(lines)


def write_cell_split(config: StudyConfig, cell: Cell) -> None:
    """The few-shot split of a cell (shared by the cells of its dataset, size and seed)."""
    from samtune.data.sources import load_source
    from samtune.data.split import Split, split_cases, write_split

    assert cell.split_dir is not None
    if (cell.split_dir / "split.json").is_file():
        return
    dataset = config.datasets[cell.dataset]
    source = load_source(dataset.train)
    if cell.fold is not None:  # cross-validation (samtune.data.folds; seed 0: one set of folds per dataset)
        from samtune.data.folds import write_fold

        assert cell.folds is not None  # a cross-validation cell has both
        write_fold(source, cell.folds, cell.fold, cell.split_dir)
        return
    assert cell.shots is not None
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
    if cell.engine:  # nnU-Net v2 (samtune.study.nnunet_cell)
        return {"engine": cell.engine, "run_dir": str(run_dir(out_dir, cell)), "out_dir": str(out_dir),
                "action": action, "score": asdict(config.score), "eval_dir": EVAL_DIR}
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
    track(process)
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
        untrack(process)
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
              command: str | None = None, log: Callable[[str], None] = print, workers: int = 1,
              gpus: list[str] | None = None) -> StudyOutcome:
    """Run the cells that are not done; write results.csv, results.md, plots.

    ``workers`` cells run at once (`samtune.study.executors`: one GPU each from ``gpus``,
    else a share of the CPU cores); each cell is locked while it runs
    (`samtune.study.locks`), so a cell held by another worker or invocation is left to
    it. Raises UserError before running anything if a cell's run directory holds another
    configuration (see `samtune.study.state`). A failing cell is recorded and the study
    goes on; KeyboardInterrupt stops it (the tables are written first).

    With ``isolate`` (on Linux), cells start from a fork server, which re-imports the
    calling script as ``__mp_main__``: a script that calls `run_study` needs the usual
    ``if __name__ == "__main__":`` guard (the `samtune` command has it).
    """
    from samtune.study.executors import local_slots, run_on_slots

    from samtune.study.preflight import check_study_folder, preflight

    out_dir = Path(out_dir)
    slots = local_slots(workers, gpus)
    if not isolate and len(slots) > 1:
        raise UserError(f"--in-process runs one cell at a time; drop --workers {workers} (or --in-process)")
    check_study_folder(out_dir)
    planned = plan_study(config, out_dir, estimates=False)
    cells = [p.cell for p in planned]
    check_not_stale(out_dir, cells)
    preflight(config, out_dir, cells)  # values, strategies, data: before the folder exists
    out_dir.mkdir(parents=True, exist_ok=True)
    title = title or config.title or f"Study {out_dir.name}"
    outcome = StudyOutcome(out_dir, [])
    save_config(config, out_dir / "study.yaml")
    todo = []
    for number, entry in enumerate(planned, start=1):
        if entry.status == "done":
            outcome.skipped.append(entry.cell.cell_id)
        else:
            todo.append((number, entry))
    shared = _Shared(config, out_dir, cells, title, command, log, isolate, outcome, InitMaker(config, out_dir, log))
    try:
        run_on_slots(todo, slots, shared.run_cell)
    finally:
        outcome.rows, outcome.files = write_outputs(config, out_dir, cells, title, command)
    return outcome


@dataclass
class _Shared:
    """What the workers of one `run_study` share; ``run_cell`` is one worker's step."""

    config: StudyConfig
    out_dir: Path
    cells: list[Cell]
    title: str
    command: str | None
    log: Callable[[str], None]
    isolate: bool
    outcome: StudyOutcome
    inits: InitMaker  # setup-2/3 weights, made by the first worker whose cell needs them
    lock: Any = field(default_factory=threading.Lock)  # tables, splits and the outcome lists

    def run_cell(self, item: tuple[int, PlannedCell], slot: Any) -> None:
        from samtune.study.locks import CellLock, holder
        from samtune.study.results import cell_row

        number, entry = item
        cell, out_dir, total = entry.cell, self.out_dir, len(self.cells)
        cell_lock = CellLock(out_dir, cell.cell_id, where=slot.where)
        if not cell_lock.acquire():
            owner = holder(out_dir, cell.cell_id)
            self.log(f"[{number}/{total}] {cell.cell_id}: running elsewhere ({owner.describe() if owner else 'locked'}); "
                     "left to it")
            with self.lock:
                self.outcome.busy.append(cell.cell_id)
            return
        try:
            status, differences = cell_status(out_dir, cell)  # another invocation may have moved it on
            if status == "done":
                with self.lock:
                    self.outcome.skipped.append(cell.cell_id)
                return
            if status == "stale":
                raise UserError(f"{run_dir(out_dir, cell)} was trained meanwhile with another configuration "
                                f"({'; '.join(differences[:3])}); use another --out")
            self.log(f"[{number}/{total}] {cell.cell_id}: {status}" + (f" ({slot.where})" if slot.number or
                                                                         slot.gpu or slot.threads else ""))
            made = self.inits.ensure(cell.init, slot, lambda job: run_job(job, self.isolate))
            if not made["ok"]:
                record_failure(out_dir, cell, "init", f"inits.{cell.init}: {made['error']}", made.get("traceback", ""))
                with self.lock:
                    self.outcome.failed.append(cell.cell_id)
                return
            started = time.monotonic()
            try:
                if cell.split_dir is not None:
                    with self.lock:
                        write_cell_split(self.config, cell)
            except Exception as error:  # e.g. more shots than patients; the job reports its own errors
                result: dict[str, Any] = {"ok": False, "stage": "split", "error": describe_error(error),
                          "traceback": traceback.format_exc()}
            else:
                job = cell_job(self.config, out_dir, cell, status)
                job.update(gpu=slot.gpu, threads=slot.threads)
                result = run_job(job, self.isolate)
            if result["ok"]:
                clear_failure(out_dir, cell)
            else:
                record_failure(out_dir, cell, result["stage"], result["error"], result["traceback"])
            with self.lock:
                if not result["ok"]:
                    self.outcome.failed.append(cell.cell_id)
                self.outcome.ran.append(cell.cell_id)
                self.log(f"  -> {cell.cell_id}: {_outcome_line(cell_row(out_dir, cell), time.monotonic() - started)}")
                write_outputs(self.config, out_dir, self.cells, self.title, self.command, plots=False)
        finally:
            cell_lock.release()
