"""Fixtures for the engine tests: random-weight model folders (helper in Testing/models)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "models"))

from MedSegAILib.models.card import load_model_card  # noqa: E402
from MedSegAILib.models.registry import LoadedModel, load_model  # noqa: E402
from model_folder import write_test_model  # noqa: E402


@pytest.fixture(scope="session")
def test_model_dir(tmp_path_factory) -> Path:
    """A model folder holding a small random-weight ChestUNet3D and its card."""
    return write_test_model(tmp_path_factory.mktemp("models") / "test_random")


@pytest.fixture
def random_model(test_model_dir) -> LoadedModel:
    """The random-weight model, loaded on the CPU."""
    return load_model(load_model_card(test_model_dir), "cpu")
