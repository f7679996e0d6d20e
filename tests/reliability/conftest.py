"""The refusal contract every bad input must meet (issue 11).

`refused(argv, watch=..., names=...)` runs `samtune` in process and asserts:
exit code 2, exactly one stderr line starting "samtune: error:", no traceback,
the line naming each of `names` (the file, row or value), and no file created,
removed or changed under any of the `watch` folders (temporary files included).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def snapshot(folders: list[Path]) -> dict[str, tuple[int, int]]:
    """Every path under `folders` with (size, mtime_ns); folders get size -1."""
    found: dict[str, tuple[int, int]] = {}
    for folder in folders:
        folder = Path(folder)
        if not folder.exists():
            continue
        for root, dirs, files in os.walk(folder):
            for name in dirs:
                found[os.path.join(root, name)] = (-1, 0)
            for name in files:
                path = os.path.join(root, name)
                stat = os.lstat(path)
                found[path] = (stat.st_size, stat.st_mtime_ns)
    return found


@pytest.fixture
def refused(capsys):
    from samtune.cli.main import main

    def check(argv: list[str], watch: list[Path], names: list[str] = ()) -> str:
        before = snapshot(watch)
        capsys.readouterr()
        try:
            code = main([str(a) for a in argv])
        except SystemExit as stop:  # argparse refusals
            code = stop.code
        out = capsys.readouterr()
        lines = [line for line in out.err.splitlines() if line.strip()]
        assert code == 2, f"exit code {code}; stderr: {out.err!r}"
        assert "Traceback" not in out.err
        # argparse prints usage + one error line; samtune's own refusals are one line
        error_lines = [line for line in lines if "error:" in line]
        assert len(error_lines) == 1, f"expected one error line, got: {out.err!r}"
        if error_lines[0].startswith("samtune: error:"):
            assert len(lines) == 1, f"expected one line, got: {out.err!r}"
        message = error_lines[0]
        for name in names:
            assert str(name) in message, f"{name!r} not named in: {message!r}"
        assert "see above" not in message or len(lines) > 1
        after = snapshot(watch)
        assert after == before, (
            f"files changed: added {sorted(set(after) - set(before))}, "
            f"removed {sorted(set(before) - set(after))}, "
            f"modified {sorted(k for k in set(after) & set(before) if after[k] != before[k])}"
        )
        return message

    return check
