"""Exact geometry between MRML volume nodes (RAS) and engine volumes (LPS).

A volume node's ``IJKToRAS`` matrix maps voxel indices to Slicer's RAS world; the engine's
:class:`~MedSegAILib.io.Volume` maps them to DICOM LPS. The two differ by negating x and y.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import SimpleITK as sitk
import slicer
import vtk

from ..errors import InputError
from ..io import Volume

RAS_FROM_LPS = np.diag([-1.0, -1.0, 1.0, 1.0])


def _numpy_matrix(matrix: vtk.vtkMatrix4x4) -> np.ndarray:
    return np.array([[matrix.GetElement(r, c) for c in range(4)] for r in range(4)])


def _vtk_matrix(array: np.ndarray) -> vtk.vtkMatrix4x4:
    matrix = vtk.vtkMatrix4x4()
    for r in range(4):
        for c in range(4):
            matrix.SetElement(r, c, float(array[r, c]))
    return matrix


def ijk_to_ras_world(volume_node: slicer.vtkMRMLVolumeNode) -> np.ndarray:
    """The 4x4 matrix from voxel index to world RAS, including a linear parent transform.

    Raises:
        InputError: the volume is under a non-linear transform (harden it first).
    """
    ijk_to_ras = vtk.vtkMatrix4x4()
    volume_node.GetIJKToRASMatrix(ijk_to_ras)
    matrix = _numpy_matrix(ijk_to_ras)
    transform_node = volume_node.GetParentTransformNode()
    if transform_node is not None:
        if not transform_node.IsTransformToWorldLinear():
            raise InputError(
                f"{volume_node.GetName()}: volume is under a non-linear transform; "
                "harden the transform (Data module) before segmenting"
            )
        to_world = vtk.vtkMatrix4x4()
        transform_node.GetMatrixTransformToWorld(to_world)
        matrix = _numpy_matrix(to_world) @ matrix
    return matrix


def volume_from_node(volume_node: slicer.vtkMRMLScalarVolumeNode) -> Volume:
    """The engine volume (array ``[k, j, i]`` + LPS geometry) of a scalar volume node.

    Raises:
        InputError: the node has no image data or is not a single-component volume.
    """
    image = volume_node.GetImageData() if volume_node is not None else None
    if image is None:
        name = volume_node.GetName() if volume_node is not None else "volume"
        raise InputError(f"{name}: the volume has no image data; load a CT volume first")
    if image.GetNumberOfScalarComponents() != 1:
        raise InputError(
            f"{volume_node.GetName()}: the volume has several components per voxel; select a scalar CT volume"
        )
    array = np.array(slicer.util.arrayFromVolume(volume_node), copy=True)
    lps = RAS_FROM_LPS @ ijk_to_ras_world(volume_node)
    linear = lps[:3, :3]
    spacing = np.linalg.norm(linear, axis=0)
    return Volume(array=array, spacing=tuple(spacing), origin=tuple(lps[:3, 3]), direction=linear / spacing)


def set_node_geometry(volume_node: slicer.vtkMRMLVolumeNode, volume: Volume) -> None:
    """Give ``volume_node`` the voxels and exact geometry (LPS -> RAS) of ``volume``."""
    slicer.util.updateVolumeFromArray(volume_node, np.ascontiguousarray(volume.array))
    volume_node.SetIJKToRASMatrix(_vtk_matrix(volume.index_to_ras()))


def read_output_image(path: str | os.PathLike) -> Volume:
    """Read an engine output (label map or float map) with its type and exact geometry.

    Unlike :func:`MedSegAILib.io.read_volume` this applies no CT checks.

    Raises:
        InputError: the file is missing, unreadable or not 3-D.
    """
    path = Path(path)
    try:
        image = sitk.ReadImage(str(path))
    except RuntimeError:
        raise InputError(f"{path}: engine output is missing or unreadable; run the engine again") from None
    if image.GetDimension() != 3 or image.GetNumberOfComponentsPerPixel() != 1:
        raise InputError(f"{path}: engine output is not a 3-D scalar image; run the engine again")
    return Volume.from_sitk(image, metadata={"source": str(path)})
