"""Generated data sources shared by the study tests (see tiny_study.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from tests.helpers.generated_data import write_disc_dataset


@pytest.fixture(scope="session")
def disc_sources(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("study_data")
    return {
        "train": write_disc_dataset(root / "train", 4, seed=1),
        "val": write_disc_dataset(root / "val", 2, seed=2),
    }


@pytest.fixture
def keep_torch_threads():
    """Cells run in this process set torch's thread count (run.threads); restore it after."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)
