"""Shared fixtures for the uncertainty and Grad-CAM tests: a random-weight model and the chest phantom."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

TESTING = Path(__file__).resolve().parents[1]
for helper_dir in (TESTING / "models", TESTING / "inference"):
    if str(helper_dir) not in sys.path:
        sys.path.insert(0, str(helper_dir))

from chest_phantom import chest_phantom  # noqa: E402
from MedSegAILib.inference.engine import segment_volume  # noqa: E402
from MedSegAILib.models.card import load_model_card  # noqa: E402
from MedSegAILib.models.registry import LoadedModel, load_model  # noqa: E402
from model_folder import write_test_model  # noqa: E402


@pytest.fixture(scope="session")
def random_model_dir(tmp_path_factory) -> Path:
    """A random-weight ChestUNet3D model folder (plumbing only)."""
    return write_test_model(tmp_path_factory.mktemp("models") / "test_random")


@pytest.fixture(scope="session")
def random_model(random_model_dir) -> LoadedModel:
    return load_model(load_model_card(random_model_dir), "cpu")


@pytest.fixture(scope="session")
def phantom():
    """The middle of the chest phantom (both lungs, the nodule) on an 8 mm grid: small and fast."""
    return chest_phantom(spacing=(8.0, 8.0, 8.0), extent_mm=(240.0, 120.0, 120.0))


@pytest.fixture(scope="session")
def segmentation(phantom, random_model):
    """The random model's segmentation of the phantom, with kept features."""
    return segment_volume(phantom, random_model, keep_features=True)
