"""Small generated datasets for engine tests (see tests/generated_data.py)."""

import pytest
from tests.helpers.generated_data import write_disc_dataset


@pytest.fixture
def disc_data(tmp_path):
    return {
        "train": write_disc_dataset(tmp_path / "train", 6, seed=1),
        "val": write_disc_dataset(tmp_path / "val", 3, seed=2),
    }
