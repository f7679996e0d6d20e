"""Inference tests run tiny models: one torch thread throughout (see tests/conftest.py)."""

import pytest


@pytest.fixture(autouse=True)
def _one_thread_everywhere(one_thread):
    yield
