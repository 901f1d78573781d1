"""A real MRML scene (slicer-core) for the adapter tests, set as ``slicer.mrmlScene``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

slicer = pytest.importorskip("slicer", reason="needs slicer-core (pip install slicer-core)")

from MedSegAILib.io import Volume, read_volume  # noqa: E402
from MedSegAILib.slicer.dicom_source import INSTANCE_UIDS_ATTRIBUTE  # noqa: E402
from MedSegAILib.slicer.volume_nodes import set_node_geometry  # noqa: E402


def attach_logics(mrml_scene) -> list:
    """Attach the application, Segmentations and Markups logics, as Slicer does at startup
    (they add the selection node and register the storage nodes of their node classes)."""
    logics = [
        slicer.vtkMRMLApplicationLogic(),
        slicer.vtkSlicerSegmentationsModuleLogic(),
        slicer.vtkSlicerMarkupsLogic(),
    ]
    for logic in logics:
        logic.SetMRMLScene(mrml_scene)
    return logics


@pytest.fixture
def scene_with_logics():
    """A factory for further scenes (e.g. to reload a saved one), with logics attached."""
    made = []

    def make():
        mrml_scene = slicer.vtkMRMLScene()
        made.append((mrml_scene, attach_logics(mrml_scene)))
        return mrml_scene

    yield make
    for mrml_scene, logics in made:
        for logic in reversed(logics):
            logic.SetMRMLScene(None)
        mrml_scene.Clear(True)


@pytest.fixture
def scene():
    """A fresh scene with Slicer's module logics attached, set as ``slicer.mrmlScene``."""
    mrml_scene = slicer.vtkMRMLScene()
    previous = getattr(slicer, "mrmlScene", None)
    slicer.mrmlScene = mrml_scene
    logics = attach_logics(mrml_scene)
    yield mrml_scene
    for logic in reversed(logics):
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


def _dicom_volume_node(scene, folder: Path, name: str):
    volume = read_volume(folder)
    files = [Path(name) for name in volume.metadata["files"]]
    node = scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", name)
    set_node_geometry(node, volume)
    database = {uid: str(path) for uid, path in zip(volume.metadata["sop_instance_uids"], files)}
    node.SetAttribute(INSTANCE_UIDS_ATTRIBUTE, " ".join(database))
    return node, database.get, files, volume


@pytest.fixture
def dicom_volume_node(scene):
    """``dicom_volume_node(folder, name)``: a DICOM series as Slicer's DICOM module leaves it, a
    volume node with ``DICOM.instanceUIDs``, plus the database lookup (SOP Instance UID -> file).

    Returns ``(node, lookup, files, volume)``; ``volume`` is the series as the engine reads it.
    """
    return lambda folder, name: _dicom_volume_node(scene, folder, name)


@pytest.fixture
def dicom_ct(dicom_volume_node, shared_data):
    """ct-3slice (the CT of dicom_seg/liver.dcm) loaded from DICOM; see :func:`dicom_volume_node`."""
    return dicom_volume_node(shared_data("dicom_seg/ct-3slice"), "3 slices")
