"""Trained tiny runs (shared with tests/cli, trained once per session)."""

import pytest
from trained_runs import trained_run


@pytest.fixture(scope="session")
def automatic_run(tmp_path_factory):
    return trained_run("automatic", tmp_path_factory)


@pytest.fixture(scope="session")
def prompted_run(tmp_path_factory):
    return trained_run("prompted", tmp_path_factory)
