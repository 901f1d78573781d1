"""Shared fixtures for the corrections tests: an oblique CT grid and the real CLI in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from MedSegAILib.io import Volume
from MedSegAILib.models.card import LabelInfo
from MedSegAILib.models.terminology import terminology_for


@pytest.fixture
def model_labels() -> list[LabelInfo]:
    """The chest CT model's labels: left lung 1, right lung 2, lung nodule 3."""
    return [
        LabelInfo(1, "left lung", (128, 174, 128), terminology_for("left lung")),
        LabelInfo(2, "right lung", (241, 214, 145), terminology_for("right lung")),
        LabelInfo(3, "lung nodule", (255, 0, 0), terminology_for("lung nodule")),
    ]


@pytest.fixture
def oblique_ct() -> Volume:
    """A small CT on an anisotropic grid rotated about two axes, with a non-zero origin (LPS)."""
    a, b = np.deg2rad(20.0), np.deg2rad(-10.0)
    rz = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, np.cos(b), -np.sin(b)], [0, np.sin(b), np.cos(b)]])
    array = (np.arange(10 * 12 * 14).reshape(10, 12, 14) % 1500 - 1000).astype(np.float32)
    return Volume(array=array, spacing=(0.7, 0.9, 2.5), origin=(-120.5, 30.25, -200.0), direction=rz @ rx)


@pytest.fixture
def medsegai():
    """Run ``python -m MedSegAILib ARGS`` (the `medsegai` command) in a fresh process."""
    return _run_medsegai


def _run_medsegai(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if k != "MEDSEGAI_DEBUG"}
    full_env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", **(env or {}))
    return subprocess.run(
        [sys.executable, "-m", "MedSegAILib", *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=300,
    )


@pytest.fixture
def mrml_scene():
    """A real MRML scene (slicer-core) with Slicer's Segmentations logic, set as ``slicer.mrmlScene``."""
    slicer = pytest.importorskip("slicer", reason="needs slicer-core (pip install slicer-core)")
    scene = slicer.vtkMRMLScene()
    previous = getattr(slicer, "mrmlScene", None)
    slicer.mrmlScene = scene
    logics = [slicer.vtkMRMLApplicationLogic(), slicer.vtkSlicerSegmentationsModuleLogic()]
    for logic in logics:
        logic.SetMRMLScene(scene)
    yield scene
    for logic in reversed(logics):
        logic.SetMRMLScene(None)
    scene.Clear(True)
    slicer.mrmlScene = previous
