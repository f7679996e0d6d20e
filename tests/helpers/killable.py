"""Run `samtune` commands in child processes that a test kills with SIGKILL.

Children are forked from a fork server that has imported the training stack once, so a
child starts in milliseconds instead of re-importing torch (seconds on 2 cores); each
runs `samtune.cli.main.main(argv)`, the same call as the `samtune` command.

`start(argv)` runs a command; `start(argv, die_in_write=(module, n))` makes the child
SIGKILL itself in the middle of its n-th `torch.save` or PNG write through `module`
(after half of the bytes reached the temporary file): a kill mid-checkpoint-write on
demand, which a timed kill hits only by luck.
"""

from __future__ import annotations

import io
import json
import multiprocessing
import os
import signal
import time
from pathlib import Path
from typing import Any, Callable

PRELOAD = ["samtune.cli.main", "samtune.study.cell_job", "samtune.study.runner", "samtune.inference.predict_files",
           "tests.helpers.killable"]
_CONTEXT: Any = None


def context() -> Any:
    global _CONTEXT
    if _CONTEXT is None:
        _CONTEXT = multiprocessing.get_context("forkserver")
        _CONTEXT.set_forkserver_preload(PRELOAD)
    return _CONTEXT


def _die_half_way(data: bytes, target: Any) -> None:
    """Write half of `data` to `target` (a path or a file object), flush, SIGKILL ourselves."""
    half = data[: max(len(data) // 2, 1)]
    if hasattr(target, "write"):
        target.write(half)
        target.flush()
        os.fsync(target.fileno())
    else:
        with open(target, "wb") as handle:
            handle.write(half)
            handle.flush()
            os.fsync(handle.fileno())
    os.kill(os.getpid(), signal.SIGKILL)


def _patch_torch_save(n: int) -> None:
    import torch

    real = torch.save
    calls = [0]

    def save(obj: Any, f: Any, *args: Any, **kwargs: Any) -> None:
        calls[0] += 1
        if calls[0] != n:
            return real(obj, f, *args, **kwargs)
        buffer = io.BytesIO()
        real(obj, buffer, *args, **kwargs)
        _die_half_way(buffer.getvalue(), f)

    torch.save = save  # this child only: training checkpoints are its only torch.save calls


def _patch_png_save(n: int) -> None:
    from PIL import Image, PngImagePlugin

    real = PngImagePlugin._save
    calls = [0]

    def save(image: Any, fp: Any, filename: Any, *args: Any, **kwargs: Any) -> None:
        calls[0] += 1
        if calls[0] != n:
            return real(image, fp, filename, *args, **kwargs)
        buffer = io.BytesIO()
        real(image, buffer, filename, *args, **kwargs)
        _die_half_way(buffer.getvalue(), fp)

    Image.SAVE["PNG"] = save


def _child(argv: list[str], log: str, die_in_write: tuple[str, int] | None) -> None:
    with open(log, "w") as handle:
        os.dup2(handle.fileno(), 1)
        os.dup2(handle.fileno(), 2)
    import torch

    torch.set_num_threads(1)  # 2 shared cores: one thread per process runs tiny models fastest
    if die_in_write is not None:
        kind, n = die_in_write
        {"torch": _patch_torch_save, "png": _patch_png_save}[kind](n)
    from samtune.cli.main import main

    os._exit(main(argv))


def start(argv: list[str], log: Path, die_in_write: tuple[str, int] | None = None) -> Any:
    process = context().Process(target=_child, args=([str(a) for a in argv], str(log), die_in_write))
    process.start()
    return process


def children_of(pid: int) -> dict[int, int]:
    """Every living descendant of `pid` (from /proc), with its parent's pid."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[0] != "Z":
                parents[int(entry)] = int(fields[1])
    found: dict[int, int] = {}
    frontier = {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - set(found)
        found.update({child: parents[child] for child in frontier})
    return found


def kill_when(process: Any, condition: Callable[[], bool], timeout: float) -> tuple[str, dict[int, int]]:
    """SIGKILL `process` once `condition()` holds (polled every millisecond) or at `timeout`
    seconds; returns what happened ("killed", "finished" or "died") and the descendants it
    had just before the kill."""
    deadline = time.monotonic() + timeout
    while process.is_alive() and not condition() and time.monotonic() < deadline:
        time.sleep(0.001)
    descendants = children_of(process.pid) if process.is_alive() else {}
    if not process.is_alive():
        process.join()
        return ("finished" if process.exitcode == 0 else "died"), {}
    os.kill(process.pid, signal.SIGKILL)
    process.join()
    return ("killed" if process.exitcode == -signal.SIGKILL else "died"), descendants


def wait_gone(pids: set[int], timeout: float = 20.0) -> set[int]:
    """The pids still alive after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    alive = set(pids)
    while alive and time.monotonic() < deadline:
        alive = {pid for pid in alive if _alive(pid)}
        time.sleep(0.01)
    return alive


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def check_no_torn_files(root: Path) -> int:
    """Every file under `root` whose name does not start with '.' (temporary files do)
    parses as what its extension says; returns how many were checked."""
    import csv

    import torch
    import yaml
    from PIL import Image
    from safetensors.torch import load_file

    checked = 0
    for path in sorted(root.rglob("*")):
        if not path.is_file() or any(part.startswith(".") for part in path.relative_to(root).parts):
            continue
        name = path.name
        try:
            if name.endswith(".json"):
                json.loads(path.read_text())
            elif name.endswith(".jsonl"):
                for line in path.read_text().splitlines():
                    json.loads(line)
            elif name.endswith((".yaml", ".yml")):
                yaml.safe_load(path.read_text())
            elif name.endswith(".pt"):
                torch.load(path, weights_only=True)
            elif name.endswith(".safetensors"):
                load_file(path)
            elif name.endswith(".png"):
                with Image.open(path) as image:
                    image.load()
            elif name.endswith(".csv"):
                rows = list(csv.reader(path.open(newline="")))
                assert rows and len({len(row) for row in rows}) == 1, "ragged rows"
        except Exception as error:  # noqa: BLE001  (any failure to parse is a torn file)
            raise AssertionError(f"torn or partial file under its final name: {path}: {error}") from None
        checked += 1
    return checked
