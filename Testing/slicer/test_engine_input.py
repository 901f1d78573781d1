"""Volume node -> engine input file: same voxels, same geometry (RAS in Slicer, LPS on disk)."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
import vtk
from MedSegAILib.errors import InputError
from MedSegAILib.io import read_volume
from MedSegAILib.slicer.engine_input import write_engine_input


@pytest.mark.parametrize("suffix", [".nrrd", ".nii.gz"])
def test_input_file_has_the_nodes_voxels_and_geometry(ct_node, ct_grid, tmp_path, suffix):
    path = write_engine_input(ct_node, tmp_path / f"input{suffix}")

    image = sitk.ReadImage(str(path))
    assert image.GetPixelID() == sitk.sitkInt16
    written = read_volume(path)
    assert written.same_grid(ct_grid, tolerance=1e-5)
    np.testing.assert_array_equal(written.array, ct_grid.array)


def test_a_voxel_lands_on_the_same_point_in_slicer_and_in_the_file(ct_node, tmp_path):
    written = read_volume(write_engine_input(ct_node, tmp_path / "input.nrrd"))
    ijk_to_ras = vtk.vtkMatrix4x4()
    ct_node.GetIJKToRASMatrix(ijk_to_ras)
    ras = ijk_to_ras.MultiplyPoint((3, 4, 5, 1))[:3]
    lps = written.ijk_to_lps(np.array([3, 4, 5]))
    np.testing.assert_allclose(lps, [-ras[0], -ras[1], ras[2]], atol=1e-4)


def test_a_linear_parent_transform_is_applied(scene, ct_node, ct_grid, tmp_path):
    transform = scene.AddNewNodeByClass("vtkMRMLLinearTransformNode")
    matrix = vtk.vtkMatrix4x4()
    matrix.SetElement(0, 3, 15.0)  # 15 mm towards Right = -15 mm in LPS x
    transform.SetMatrixTransformToParent(matrix)
    ct_node.SetAndObserveTransformNodeID(transform.GetID())

    written = read_volume(write_engine_input(ct_node, tmp_path / "input.nrrd"))
    np.testing.assert_allclose(written.origin, np.add(ct_grid.origin, (-15.0, 0, 0)), atol=1e-5)


def test_a_volume_without_image_data_is_refused(scene, tmp_path):
    empty = scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "empty")
    with pytest.raises(InputError, match="empty: the volume has no image data"):
        write_engine_input(empty, tmp_path / "input.nrrd")


def test_an_unsupported_suffix_is_refused(ct_node, tmp_path):
    with pytest.raises(InputError, match="unsupported engine input format"):
        write_engine_input(ct_node, tmp_path / "input.png")
