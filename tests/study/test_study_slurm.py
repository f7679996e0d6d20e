"""`--executor slurm` through submitit's local executor (real job subprocesses, no
scheduler; issue 18): a job killed -9 mid-cell is recorded as failed, `--status` says so,
the next invocation resumes the cell from its checkpoint, its job is preempted and
requeued by submitit and resumes again, ending with the same weights as an
uninterrupted run."""

from __future__ import annotations

import json
import os
import re
import signal
import time

import pytest
import torch
from safetensors.torch import load_file
from tests.helpers.tiny_study import study_dict, write_study

pytest.importorskip("submitit")

from samtune.cli.main import main  # noqa: E402
from samtune.study.preflight import load_study  # noqa: E402
from samtune.study.grid import expand_cells  # noqa: E402
from samtune.study.locks import lock_path, read_owner  # noqa: E402
from samtune.study.runner import run_study  # noqa: E402
from samtune.study.state import cell_status  # noqa: E402
from samtune.study.slurm import read_jobs, run_study_slurm, wait_for_jobs  # noqa: E402

CELL = "discs__tiny_vit_test__decoder__full__seed0"


def test_a_killed_job_is_resumed_by_the_next_invocation(disc_sources, tmp_path, capsys, keep_torch_threads):
    data = study_dict(disc_sources, components=["decoder"], methods=["full"])
    data["train"] = {**data["train"], "optim": {"steps": 12, "lr": 0.003, "warmup_steps": 0}, "eval": {"every": 12},
                     "run": {**data["train"]["run"], "checkpoint_every": 2}}
    data["executor"] = {"cluster": "local", "gpus_per_node": 0, "cpus_per_task": 1, "timeout_min": 10}
    path = write_study(tmp_path / "cv.yaml", data)
    out = tmp_path / "out"
    config = load_study(path)
    first = run_study_slurm(config, out, log=lambda line: None, wait=False)
    assert list(first.jobs) == [CELL] and read_jobs(out)[CELL]["job_id"] == str(first.jobs[CELL].job_id)
    checkpoint, lock = out / "runs" / CELL / "state" / "last.pt", lock_path(out, CELL)
    deadline = time.monotonic() + 600  # an upper bound: a loaded machine starts jobs slowly
    while not (checkpoint.exists() and read_owner(lock) is not None) and time.monotonic() < deadline:
        time.sleep(0.05)
    owner = read_owner(lock)
    assert owner is not None and owner.where.startswith("local job ")
    first_pid = owner.pid
    os.kill(owner.pid, signal.SIGKILL)  # mid-cell: a checkpoint exists, no summary yet
    wait_for_jobs(config, out, first, log=lambda line: None)
    assert not (out / "runs" / CELL / "summary.json").exists()
    failure = json.loads((out / "failures" / f"{CELL}.json").read_text())
    assert failure["stage"] == "job" and "ended without a result" in failure["error"]
    capsys.readouterr()
    assert main(["study", "--status", str(out)]) == 0
    status = capsys.readouterr().out
    assert re.search(rf"^{CELL}\s+failed\s+job: local job .*\(traceback: failures/{CELL}.json\)$", status, re.M)
    assert status.startswith(f"{out}: 1 cell: 1 failed\n") and "command again runs the 1 cell(s)" in status
    killed_at = max(json.loads(line).get("step", 0) for line in
                    (out / "runs" / CELL / "metrics.jsonl").read_text().splitlines())
    assert 2 <= killed_at < 12
    (cell,) = expand_cells(config, out)
    assert cell_status(out, cell) == ("resume", [])  # what the next job does: train(resume=True)

    # The next invocation resumes it; its job is then preempted (SIGUSR2, as SLURM sends
    # before a time limit or preemption), checkpointed by submitit, requeued and resumed.
    second = run_study_slurm(config, out, log=lambda line: None, wait=False)
    assert second.ran == [CELL]
    deadline = time.monotonic() + 600  # an upper bound: a loaded machine starts jobs slowly
    while time.monotonic() < deadline:
        owner = read_owner(lock)
        if owner is not None and owner.pid != first_pid:
            break
        time.sleep(0.05)
    os.kill(owner.pid, signal.SIGUSR2)
    wait_for_jobs(config, out, second, log=lambda line: None)
    assert not second.failed
    log = "".join(p.read_text() for p in (out / "slurm" / str(second.jobs[CELL].job_id)).glob("*_log.*"))
    assert "Caught signal SIGUSR2" in log and f"Requeued job {second.jobs[CELL].job_id}" in log
    assert not (out / "failures" / f"{CELL}.json").exists() and not lock.exists()
    assert main(["study", "--status", str(out)]) == 0
    status = capsys.readouterr().out
    assert re.search(rf"^{CELL}\s+done\s+Dice \d\.\d{{4}} on val$", status, re.M) and "again" not in status

    # The same cell trained in one go, in this process: identical weights.
    reference = tmp_path / "reference"
    run_study(config, reference, log=lambda line: None, isolate=False)
    resumed = load_file(out / "runs" / CELL / "weights" / "tuning.safetensors")
    straight = load_file(reference / "runs" / CELL / "weights" / "tuning.safetensors")
    assert resumed.keys() == straight.keys() and all(torch.equal(resumed[k], straight[k]) for k in resumed)
