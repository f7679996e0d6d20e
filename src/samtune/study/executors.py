"""Where a study's cells run: one after another, on local workers, or on SLURM.

- ``local`` (the default): ``--workers N`` runs up to N cells at once on this machine,
  each in its own child process (`samtune.study.runner.run_job`). With ``--gpus 0,1,2,3``
  each worker owns one device (the cell's process sees only it, as ``cuda:0``, through
  ``CUDA_VISIBLE_DEVICES``); on a CPU each worker gets ``cores // N`` torch threads
  (a cell's own ``run.threads`` still wins). N = 1 is the serial study.
- ``slurm``: cells become one submitit job array (`samtune.study.slurm`).

Whatever runs a cell first takes its lock (`samtune.study.locks`), so workers of one
study, two studies started on the same folder, or jobs on several machines sharing the
folder never run a cell twice.
"""

from __future__ import annotations

import os
import queue
import signal
import threading
from dataclasses import dataclass
from typing import Any, Callable, Sequence, TypeVar

from samtune.errors import UserError

T = TypeVar("T")


@dataclass(frozen=True)
class Slot:
    """One local worker: its number, its GPU (a CUDA device index as text) or CPU threads."""

    number: int
    gpu: str | None = None
    threads: int | None = None

    @property
    def where(self) -> str:
        if self.gpu is not None:
            return f"worker {self.number}, gpu {self.gpu}"
        return f"worker {self.number}" + (f", {self.threads} CPU thread(s)" if self.threads else "")


def parse_gpus(text: str | None) -> list[str] | None:
    """``--gpus 0,1,3`` -> ["0", "1", "3"]; None stays None."""
    if text is None:
        return None
    gpus = [part.strip() for part in text.split(",") if part.strip()]
    if not gpus or not all(g.isdigit() for g in gpus):
        raise UserError(f"--gpus takes comma-separated device numbers such as 0,1,2,3, got '{text}'")
    if len(set(gpus)) != len(gpus):
        raise UserError(f"--gpus {text} names a device twice; give each GPU once")
    return gpus


def local_slots(workers: int, gpus: Sequence[str] | None = None, cpus: int | None = None) -> list[Slot]:
    """The workers of a local study; one GPU each, or an equal share of the CPU cores.

    A single worker without GPUs is the serial study: it keeps torch's own threading.
    """
    if workers < 1:
        raise UserError(f"--workers must be at least 1, got {workers}")
    if gpus:
        if workers > len(gpus):
            raise UserError(f"--workers {workers} is more than the {len(gpus)} GPU(s) given with --gpus "
                            f"{','.join(gpus)}; each worker needs its own GPU: use --workers {len(gpus)} or fewer")
        return [Slot(n, gpu=gpus[n]) for n in range(workers)]
    if workers == 1:
        return [Slot(0)]
    if cpus is None:
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return [Slot(n, threads=max(1, cpus // workers)) for n in range(workers)]


# Child processes of running cells, so that Ctrl-C can be passed on to them (the signal
# reaches only this process's main thread, and the workers wait in other threads).
_CHILDREN: set[Any] = set()
_CHILDREN_LOCK = threading.Lock()


def track(process: Any) -> None:
    with _CHILDREN_LOCK:
        _CHILDREN.add(process)


def untrack(process: Any) -> None:
    with _CHILDREN_LOCK:
        _CHILDREN.discard(process)


def _interrupt_children() -> None:
    with _CHILDREN_LOCK:
        children = list(_CHILDREN)
    for process in children:
        if process.pid is not None and process.is_alive():
            try:
                os.kill(process.pid, signal.SIGINT)  # the cell saves nothing more and reports "interrupted"
            except ProcessLookupError:
                pass


def run_on_slots(tasks: Sequence[T], slots: Sequence[Slot], work: Callable[[T, Slot], None]) -> None:
    """Run ``work(task, slot)`` for every task, at most one task per slot at a time, in order.

    One slot runs in the calling thread. With several, each slot is a thread pulling the
    next task; an exception in one stops the others from starting new tasks and is raised
    here once all have finished. KeyboardInterrupt is passed on to the cells' processes.
    """
    if len(slots) == 1:
        for task in tasks:
            work(task, slots[0])
        return
    pending: queue.Queue[T] = queue.Queue()
    for task in tasks:
        pending.put(task)
    stop = threading.Event()
    errors: list[BaseException] = []

    def worker(slot: Slot) -> None:
        while not stop.is_set():
            try:
                task = pending.get_nowait()
            except queue.Empty:
                return
            try:
                work(task, slot)
            except BaseException as error:  # noqa: BLE001 (re-raised in the main thread)
                errors.append(error)
                stop.set()
                return

    threads = [threading.Thread(target=worker, args=(slot,), name=f"samtune-worker-{slot.number}") for slot in slots]
    for thread in threads:
        thread.start()
    try:
        for thread in threads:
            while thread.is_alive():
                thread.join(timeout=0.5)
    except KeyboardInterrupt:
        stop.set()
        _interrupt_children()
        for thread in threads:
            thread.join()
        raise
    if errors:
        raise errors[0]
