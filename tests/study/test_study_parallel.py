"""Parallel local workers and per-cell locks (issue 18): a 4-cell study run by 2 workers
gives the same results as the serial study (times and memory aside), and a cell held by
a live worker is left alone while a dead worker's lock is taken over."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time

import pytest
import torch
from safetensors.torch import load_file
from tests.helpers.tiny_study import study_dict, write_study

from samtune.study.preflight import load_study
from samtune.study.executors import Slot, local_slots, run_on_slots
from samtune.study.locks import CellLock, holder, lock_path, read_owner
from samtune.study.runner import run_study

TIMING = {"train_seconds", "peak_rss_mb", "run_dir"}


def rows_of(out):
    with open(out / "results.csv", newline="") as handle:
        return {row["cell"]: {k: v for k, v in row.items() if k not in TIMING} for row in csv.DictReader(handle)}


def test_two_workers_equal_the_serial_study(disc_sources, tmp_path, keep_torch_threads):
    path = write_study(tmp_path / "tiny.yaml", study_dict(disc_sources))
    serial, parallel = tmp_path / "serial", tmp_path / "parallel"
    lines: list[str] = []
    run_study(load_study(path), serial, log=lambda line: None, isolate=False)
    started = time.monotonic()
    outcome = run_study(load_study(path), parallel, log=lines.append, workers=2)
    assert time.monotonic() - started < 120
    assert sorted(outcome.ran) == sorted(rows_of(serial)) and len(outcome.ran) == 4 and not outcome.failed
    # Both workers ran cells: the log names the worker of every cell it started.
    assert {"worker 0" in line for line in lines if ": new (" in line} == {True, False}
    a, b = rows_of(serial), rows_of(parallel)
    assert a == b and all(row["status"] == "done" for row in a.values())
    for cell in a:
        per_case = [(out / "runs" / cell / "eval" / "per_case.csv").read_text() for out in (serial, parallel)]
        assert per_case[0] == per_case[1]
        files = sorted((serial / "runs" / cell / "weights").glob("*.safetensors"))
        assert files
        for file in files:
            mine, theirs = load_file(file), load_file(parallel / "runs" / cell / "weights" / file.name)
            assert mine.keys() == theirs.keys() and all(torch.equal(mine[k], theirs[k]) for k in mine)
    assert not list((parallel / "locks").iterdir())  # every lock released


def test_local_slots_share_the_cores_or_give_one_gpu_each():
    assert local_slots(2, cpus=8) == [Slot(0, threads=4), Slot(1, threads=4)]
    assert local_slots(3, cpus=2) == [Slot(n, threads=1) for n in range(3)]
    assert local_slots(1) == [Slot(0)]  # serial: torch's own threading
    assert [s.gpu for s in local_slots(2, ["3", "5", "7"])] == ["3", "5"]


def test_run_on_slots_runs_every_task_once_two_at_a_time():
    import threading

    active, peak, done = [0], [0], []
    guard = threading.Lock()

    def work(task, slot):
        with guard:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        time.sleep(0.05)
        with guard:
            active[0] -= 1
            done.append(task)

    run_on_slots(list(range(7)), [Slot(0), Slot(1)], work)
    assert sorted(done) == list(range(7)) and peak[0] == 2


def test_a_live_lock_is_respected_and_a_dead_workers_lock_taken_over(tmp_path):
    first = CellLock(tmp_path, "cell_a", where="worker 0")
    assert first.acquire()
    assert json.loads(lock_path(tmp_path, "cell_a").read_text())["pid"] == os.getpid()
    assert not CellLock(tmp_path, "cell_a").acquire()  # held by this live process
    assert holder(tmp_path, "cell_a").describe().endswith("worker 0")
    first.release()
    assert not lock_path(tmp_path, "cell_a").exists() and holder(tmp_path, "cell_a") is None

    # A worker process that took the lock and was killed -9: its pid is gone.
    code = ("import sys, os, signal; from samtune.study.locks import CellLock; "
            "CellLock(sys.argv[1], 'cell_b').acquire(); os.kill(os.getpid(), signal.SIGKILL)")
    subprocess.run([sys.executable, "-c", code, str(tmp_path)], env={**os.environ}, check=False)
    dead = read_owner(lock_path(tmp_path, "cell_b"))
    assert dead is not None and dead.pid != os.getpid() and holder(tmp_path, "cell_b") is None
    taker = CellLock(tmp_path, "cell_b")
    assert taker.acquire() and taker.took_over == dead
    assert read_owner(lock_path(tmp_path, "cell_b")) == taker.owner
    taker.release()


def test_a_lock_whose_heartbeat_stopped_is_stale_even_from_another_host(tmp_path):
    path = lock_path(tmp_path, "cell_c")
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"host": "other-node", "pid": 1, "token": "x", "started": 0.0, "where": ""}))
    assert holder(tmp_path, "cell_c") is not None  # another machine, fresh heartbeat: alive
    old = time.time() - 301
    os.utime(path, (old, old))
    assert holder(tmp_path, "cell_c") is None
    lock = CellLock(tmp_path, "cell_c", heartbeat=0.05)
    assert lock.acquire()
    os.utime(path, (old, old))
    time.sleep(0.3)  # the heartbeat refreshes a held lock
    assert time.time() - path.stat().st_mtime < 5
    lock.release()


@pytest.mark.parametrize("workers", [0, -1])
def test_workers_must_be_positive(workers):
    from samtune.errors import UserError

    with pytest.raises(UserError, match="--workers must be at least 1"):
        local_slots(workers)
