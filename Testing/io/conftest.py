"""Fixtures for the I/O tests: the real CIP DICOM series (64x64x79 CT)."""

from __future__ import annotations

from pathlib import Path

import pytest

CIP_SERIES = "cip_lung_ct/ct-64Dicom"


@pytest.fixture
def cip_series(shared_data) -> Path:
    """The CIP series folder in ../shared/data (skips when absent)."""
    return shared_data(CIP_SERIES)
