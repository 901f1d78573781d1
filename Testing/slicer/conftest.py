"""A real MRML scene (slicer-core) for the adapter tests, set as ``slicer.mrmlScene``."""

from __future__ import annotations

import numpy as np
import pytest

slicer = pytest.importorskip("slicer", reason="needs slicer-core (pip install slicer-core)")

from MedSegAILib.io import Volume  # noqa: E402


@pytest.fixture
def scene():
    """A fresh scene with the Segmentations module logic attached, as in Slicer."""
    mrml_scene = slicer.vtkMRMLScene()
    previous = getattr(slicer, "mrmlScene", None)
    slicer.mrmlScene = mrml_scene
    logic = slicer.vtkSlicerSegmentationsModuleLogic()
    logic.SetMRMLScene(mrml_scene)
    yield mrml_scene
    logic.SetMRMLScene(None)
    mrml_scene.Clear(True)
    slicer.mrmlScene = previous


def oblique_grid(shape_kji=(6, 7, 8)) -> Volume:
    """An anisotropic grid rotated about two axes, with a non-zero origin (LPS)."""
    a, b = np.deg2rad(20.0), np.deg2rad(-10.0)
    rz = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, np.cos(b), -np.sin(b)], [0, np.sin(b), np.cos(b)]])
    array = (np.arange(np.prod(shape_kji)).reshape(shape_kji) % 997 - 500).astype(np.int16)
    return Volume(array=array, spacing=(0.7, 0.9, 2.5), origin=(-120.5, 30.25, -200.0), direction=rz @ rx)


@pytest.fixture
def ct_grid() -> Volume:
    return oblique_grid()


@pytest.fixture
def ct_node(scene, ct_grid):
    """A scalar volume node holding :func:`oblique_grid`, set with Slicer's own RAS setters."""
    node = scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "chest CT")
    slicer.util.updateVolumeFromArray(node, ct_grid.array)
    flip = np.diag([-1.0, -1.0, 1.0])
    x, y, z = ct_grid.origin
    node.SetOrigin(-x, -y, z)
    node.SetSpacing(*ct_grid.spacing)
    node.SetIJKToRASDirections(*(flip @ ct_grid.direction).flatten().tolist())  # row-major
    return node
