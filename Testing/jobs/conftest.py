"""Fixtures for the job runner's tests: a small phantom CT file, a random-weight model folder,
and a stand-in detection model on a synthetic chest (plumbing only, never a real model)."""

from __future__ import annotations

from pathlib import Path

import pytest
import SimpleITK as sitk
from chest_phantom import chest_phantom
from fake_model import fake_model, synthetic_chest
from MedSegAILib.jobs import runner
from model_folder import write_test_model


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory) -> Path:
    """A random-weight ChestUNet3D model folder (4 mm grid, a dropout head)."""
    return write_test_model(tmp_path_factory.mktemp("models") / "test_random")


@pytest.fixture(scope="session")
def ct_file(tmp_path_factory) -> Path:
    """The middle of the chest phantom on a 6 mm grid, as NIfTI: small and quick to segment."""
    path = tmp_path_factory.mktemp("ct") / "phantom.nii.gz"
    sitk.WriteImage(
        chest_phantom(spacing=(6.0, 6.0, 6.0), extent_mm=(240.0, 120.0, 120.0)).to_sitk(), str(path)
    )
    return path


@pytest.fixture(scope="session")
def chest_file(tmp_path_factory) -> Path:
    """A synthetic chest with one 10 mm nodule, which the stand-in detection model finds."""
    volume, _, _ = synthetic_chest()
    path = tmp_path_factory.mktemp("chest") / "chest.nii.gz"
    sitk.WriteImage(volume.to_sitk(), str(path))
    return path


@pytest.fixture
def density_model(monkeypatch):
    """The runner resolves and loads the stand-in detection model whatever the request names."""
    model = fake_model()
    monkeypatch.setattr(runner, "resolve_model", lambda name: model.card)
    monkeypatch.setattr(runner, "load_model", lambda card, device: model)
    return model
