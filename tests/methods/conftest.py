"""Fixtures for the method tests: both backbone families, one intra-op thread."""

import pytest
import torch

from tests.helpers.tiny_sam import FAMILIES


@pytest.fixture(params=list(FAMILIES))
def family(request) -> str:
    """Every test taking `family` runs on both tiny backbones (SAM ViT and TinyViT)."""
    return request.param


@pytest.fixture(autouse=True)
def one_thread():
    """The tiny models run hundreds of small ops: a second thread only adds synchronisation
    (5x slower, wall and CPU, on a loaded 2-core machine)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
