"""`samtune view` as a user runs it: prints the URL, serves the page, stops cleanly on Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx

SRC = str(Path(__file__).resolve().parents[2] / "src")


def test_view_prints_the_url_serves_and_stops_on_ctrl_c(view_data, tmp_path):
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    command = [sys.executable, "-m", "samtune", "view", str(view_data["root"] / "eval"), "--no-browser",
               "--no-model", "--corrections", str(tmp_path / "fixes")]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = process.stdout.readline()
        assert line.startswith("samtune view: http://127.0.0.1:"), line + process.stderr.read()
        url = line.split(": ", 1)[1].strip()
        cases = httpx.get(url + "api/cases", timeout=30).json()["cases"]
        assert [c["name"] for c in cases] == ["vol", "photo"]
        assert httpx.get(url, timeout=30).status_code == 200
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0
        assert "samtune view: stopped" in process.stdout.read()
    finally:
        if process.poll() is None:
            process.kill()
    assert not (tmp_path / "fixes").exists()  # nothing written without Accept
