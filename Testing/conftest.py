"""Shared test fixtures: the local engine and lab sources first on sys.path, and the shared data."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "MedSegAI"), str(REPO / "lab")]
# Test helpers shared across folders (model folders, phantoms, the stand-in detection model).
sys.path[2:2] = [str(REPO / "Testing" / name) for name in ("models", "inference", "detection")]

from MedSegAILib.io.shared_data import shared_data_path  # noqa: E402

SHARED_DATA = shared_data_path()

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
try:
    import torch

    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
except ImportError:  # the engine-import test runs without torch too
    pass


def shared_path(relative: str) -> Path:
    """A path under ../shared/data, or skip the test with a clear reason if absent."""
    path = SHARED_DATA / relative
    if not path.exists():
        pytest.skip(f"needs ../shared/data/{relative} (real CT not present on this machine)")
    return path


@pytest.fixture
def shared_data():
    """``shared_data("cip_lung_ct/ct-64.nrrd")`` -> Path, skipping when absent."""
    return shared_path
