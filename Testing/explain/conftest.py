"""Fixtures: a random-weight model, the chest phantom and its segmentation (random_model_fixtures), the
phantom as a file, and the random model with a random nodule classifier."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest
import SimpleITK as sitk
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "uncertainty"))

import random_model_fixtures  # noqa: E402
from MedSegAILib.detection.nodule_scorer import DETECTION_CARD  # noqa: E402
from MedSegAILib.detection.patch_classifier import NoduleClassifier, save_classifier  # noqa: E402
from MedSegAILib.models.weights import sha256_of_file  # noqa: E402

# The shared fixtures, under the names the tests here and the fixtures below ask for.
phantom = random_model_fixtures.phantom
random_model = random_model_fixtures.random_model
random_model_dir = random_model_fixtures.random_model_dir
segmentation = random_model_fixtures.segmentation


@pytest.fixture(scope="session")
def random_classifier() -> NoduleClassifier:
    """A nodule classifier with random weights (seed 0), in eval mode."""
    torch.manual_seed(0)
    return NoduleClassifier().eval()


@pytest.fixture(scope="module")
def phantom_file(phantom, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("input") / "phantom.nrrd"
    sitk.WriteImage(phantom.to_sitk(), str(path))
    return path


@pytest.fixture(scope="session")
def model_with_classifier(random_model_dir, random_classifier, tmp_path_factory) -> Path:
    """The random segmentation model folder plus a random nodule classifier and its detection card."""
    folder = tmp_path_factory.mktemp("with_classifier") / "model"
    shutil.copytree(random_model_dir, folder)
    save_classifier(random_classifier, folder / "classifier.safetensors")
    card = {
        "nodule_classifier": {
            "file": "classifier.safetensors",
            "sha256": sha256_of_file(folder / "classifier.safetensors"),
            "calibration": {"slope": 1.0, "intercept": 0.0},
        }
    }
    (folder / DETECTION_CARD).write_text(json.dumps(card))
    return folder
