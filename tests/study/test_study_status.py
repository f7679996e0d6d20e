"""`samtune study --status OUT` as a user reads it (issue 18): counts first, one aligned
row per cell with what it is doing, and what the same command would do next."""

from __future__ import annotations

import json
import re

from tests.helpers.tiny_study import study_dict, write_study

from samtune.configs import save_config
from samtune.study.preflight import load_study
from samtune.study.grid import expand_cells
from samtune.study.locks import CellLock
from samtune.study.state import record_failure
from samtune.study.status import study_status


def test_status_rows_of_a_running_a_failed_and_untouched_cells(disc_sources, tmp_path):
    config = load_study(write_study(tmp_path / "s.yaml", study_dict(disc_sources)))
    out = tmp_path / "out"
    out.mkdir()
    save_config(config, out / "study.yaml")
    running, failed, *rest = expand_cells(config, out)
    (out / "runs" / running.cell_id).mkdir(parents=True)
    (out / "runs" / running.cell_id / "metrics.jsonl").write_text(
        json.dumps({"step": 1, "loss": 0.5}) + "\n" + json.dumps({"step": 2, "loss": 0.4}) + "\n")
    record_failure(out, failed, "train", "CUDA out of memory.\nTried to allocate 2 GiB", "Traceback ...")
    lock = CellLock(out, running.cell_id, where="worker 1, gpu 1")
    assert lock.acquire()
    try:
        text = study_status(out)
    finally:
        lock.release()
    lines = text.splitlines()
    assert lines[0] == f"{out}: 4 cells: 1 failed, 1 running, 2 not started"
    header = lines[2]
    assert header.split() == ["cell", "state", "detail"]
    column = header.index("state")
    rows = {line.split()[0]: line for line in lines[3:7]}
    assert all(row[column - 2:column] == "  " and row[column] != " " for row in rows.values())  # aligned
    assert re.search(r"running +step 2/3, for \d+ s, on \S+ pid \d+, worker 1, gpu 1, heartbeat \d+ s ago$",
                     rows[running.cell_id])
    assert rows[failed.cell_id].endswith(f"failed       train: CUDA out of memory. Tried to allocate 2 GiB "
                                         f"(traceback: failures/{failed.cell_id}.json)")
    assert all(rows[c.cell_id].rstrip().endswith("not started") for c in rest)
    assert "again" not in text  # a cell is running: the study is being worked on
    after = study_status(out)  # lock released: nothing works on it, so say what rerunning does
    assert after.splitlines()[0] == f"{out}: 4 cells: 1 failed, 3 not started"
    assert after.splitlines()[-1].startswith(f"Running the same `samtune study ... --out {out}` command again "
                                             "runs the 4 cell(s) not done")
