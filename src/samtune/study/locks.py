"""Per-cell lock files: no two workers, invocations or machines run the same cell.

A worker that wants to run a cell creates ``OUT/locks/<cell>.lock`` with ``O_CREAT |
O_EXCL`` (atomic on local file systems and on NFS v3+), writes who it is (host, pid,
a random token, start time) and keeps the file's modification time fresh from a
heartbeat thread (every `HEARTBEAT_S` seconds). Anyone else finding the file leaves the
cell alone unless the lock is stale:

- the owner ran on this host and its process is gone (a killed worker), or
- the heartbeat stopped: the file was not touched for `STALE_AFTER_S` seconds (a dead
  machine, a hung or preempted job; also covers a pid reused on another host).

A stale lock is taken over under a short-lived guard file (``<cell>.lock.takeover``,
itself created with ``O_EXCL``), so that two workers seeing the same stale lock cannot
both take it: the guard's holder checks again that the lock still holds the stale
owner, removes it and creates its own. A guard older than `GUARD_STALE_S` (its holder
died in those few lines) is removed by the next one who needs it.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

LOCK_DIR = "locks"
HEARTBEAT_S = 30.0  # seconds between touches of a held lock
STALE_AFTER_S = 300.0  # a lock untouched this long belongs to a dead or hung worker
GUARD_STALE_S = 60.0


@dataclass(frozen=True)
class LockOwner:
    """Who holds a cell: written as JSON into the lock file."""

    host: str
    pid: int
    token: str
    started: float  # Unix time
    where: str = ""  # free text shown by --status, e.g. "gpu 2" or "slurm job 1234_5"

    def describe(self) -> str:
        return f"{self.host} pid {self.pid}" + (f", {self.where}" if self.where else "")


def lock_path(out_dir: str | Path, cell_id: str) -> Path:
    return Path(out_dir) / LOCK_DIR / f"{cell_id}.lock"


def read_owner(path: Path) -> LockOwner | None:
    """The owner written in a lock file; None if there is none (or it is half written)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return LockOwner(**data)
    except (OSError, ValueError, TypeError):
        return None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def is_stale(path: Path, owner: LockOwner | None, stale_after: float = STALE_AFTER_S) -> bool:
    """Whether the lock at ``path`` (held by ``owner``) belongs to a dead worker."""
    try:
        age = time.time() - path.stat().st_mtime
    except FileNotFoundError:
        return False  # released meanwhile: not ours to judge
    if age > stale_after:
        return True
    if owner is None:  # being written right now (or garbage younger than stale_after)
        return False
    return owner.host == socket.gethostname() and not _pid_alive(owner.pid)


def holder(out_dir: str | Path, cell_id: str, stale_after: float = STALE_AFTER_S) -> LockOwner | None:
    """The live owner of a cell's lock, or None when it is free or stale."""
    path = lock_path(out_dir, cell_id)
    if not path.exists():
        return None
    owner = read_owner(path)
    if is_stale(path, owner, stale_after):
        return None
    return owner or LockOwner("?", 0, "", 0.0, "starting")


def _create(path: Path, owner: LockOwner) -> bool:
    try:
        handle = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(handle, "w", encoding="utf-8") as stream:
        stream.write(json.dumps(asdict(owner)))
    return True


class CellLock:
    """The lock of one cell; `acquire` returns False when another live worker holds it.

    Use as ``if lock.acquire(): try: ... finally: lock.release()``; while held, a daemon
    thread touches the file every ``heartbeat`` seconds.
    """

    def __init__(self, out_dir: str | Path, cell_id: str, where: str = "", heartbeat: float = HEARTBEAT_S,
                 stale_after: float = STALE_AFTER_S):
        self.path = lock_path(out_dir, cell_id)
        self.owner = LockOwner(socket.gethostname(), os.getpid(), secrets.token_hex(8), time.time(), where)
        self.heartbeat, self.stale_after = heartbeat, stale_after
        self.took_over: LockOwner | None = None  # the dead owner we replaced, if any
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def acquire(self, reclaim: Callable[[LockOwner], bool] | None = None) -> bool:
        """Take the lock; False if a live worker holds it. ``reclaim(owner)`` True marks a
        lock as ours to take although it looks alive (a requeued SLURM job finding the
        lock of its own earlier attempt, killed at its time limit)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._reclaim = reclaim
        if not _create(self.path, self.owner):
            if not self._take_over():
                return False
        self._thread = threading.Thread(target=self._beat, name=f"samtune-lock-{self.path.stem}", daemon=True)
        self._thread.start()
        return True

    def _dead(self, owner: LockOwner | None) -> bool:
        reclaim = getattr(self, "_reclaim", None)
        return is_stale(self.path, owner, self.stale_after) or (
            owner is not None and reclaim is not None and reclaim(owner))

    def _take_over(self) -> bool:
        owner = read_owner(self.path)
        if not self._dead(owner):
            return False
        guard = self.path.with_name(self.path.name + ".takeover")
        if not _create(guard, self.owner):
            try:
                if time.time() - guard.stat().st_mtime > GUARD_STALE_S:
                    guard.unlink(missing_ok=True)
            except FileNotFoundError:
                pass
            return False  # someone else is taking it over; the cell is theirs
        try:
            # Under the guard: the lock must still be the stale one we judged.
            again = read_owner(self.path)
            if again != owner or not self._dead(again):
                return _create(self.path, self.owner)  # it vanished (released): ours if free
            self.path.unlink(missing_ok=True)
            self.took_over = owner
            return _create(self.path, self.owner)
        finally:
            guard.unlink(missing_ok=True)

    def _beat(self) -> None:
        while not self._stop.wait(self.heartbeat):
            try:
                os.utime(self.path)
            except FileNotFoundError:  # taken from us (we looked dead): nothing to refresh
                return

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if read_owner(self.path) == self.owner:  # never remove a lock someone took over
            self.path.unlink(missing_ok=True)
