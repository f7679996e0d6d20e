"""Trained tiny runs (shared with tests/inference, trained once per session) and one torch thread.

Tiny-model forwards are a few milliseconds of many small ops; with more threads than free
cores (a busy CI runner, pytest-xdist) each op waits on descheduled threads and runs
20-50x slower, so tests that use these runs ask for `one_thread` (one thread, restored afterwards).
"""

import pytest
import torch
from trained_runs import trained_run


@pytest.fixture
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def automatic_run(tmp_path_factory):
    return trained_run("automatic", tmp_path_factory)


@pytest.fixture(scope="session")
def prompted_run(tmp_path_factory):
    return trained_run("prompted", tmp_path_factory)
