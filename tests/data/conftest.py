"""Shared fixtures for the data tests: paths to real data and generated DICOM series."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.helpers.generated_data import write_dicom_series

PROSTATE = Path(__file__).parents[2].parent / "shared/data/MRI-Prostate"


@pytest.fixture
def prostate_dir() -> Path:
    if not PROSTATE.is_dir():
        pytest.skip(f"real data not found at {PROSTATE}")
    return PROSTATE


@pytest.fixture
def dicom_series():
    """The `write_dicom_series` factory."""
    return write_dicom_series
