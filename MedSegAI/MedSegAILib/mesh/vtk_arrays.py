"""Conversions between numpy arrays and the VTK objects the mesh pipeline uses."""

from __future__ import annotations

import numpy as np
import vtkmodules.vtkCommonCore as vtk_core
import vtkmodules.vtkCommonDataModel as vtk_data
from vtkmodules.util import numpy_support


def image_from_mask(mask: np.ndarray) -> vtk_data.vtkImageData:
    """A ``vtkImageData`` in voxel-index space (origin 0, spacing 1) holding ``mask[k, j, i]``.

    Args:
        mask: 3-D array indexed ``[k, j, i]``.

    Returns:
        Image whose point ``(i, j, k)`` holds ``mask[k, j, i]``.
    """
    k, j, i = mask.shape
    image = vtk_data.vtkImageData()
    image.SetDimensions(i, j, k)
    # A view, not a copy: numpy_to_vtk keeps a reference to the array for the image's lifetime.
    scalars = numpy_support.numpy_to_vtk(np.ascontiguousarray(mask).ravel(), deep=False)
    image.GetPointData().SetScalars(scalars)
    return image


def polydata_arrays(polydata: vtk_data.vtkPolyData) -> tuple[np.ndarray, np.ndarray]:
    """Points ``(N, 3)`` float64 and triangles ``(M, 3)`` int64 of a triangle-only polydata.

    The triangles are a view of VTK's connectivity when it is already int64 (the usual case).

    Raises:
        ValueError: the polydata holds polygons that are not triangles.
    """
    if polydata.GetNumberOfPoints() == 0:
        return np.zeros((0, 3)), np.zeros((0, 3), dtype=np.int64)
    points = numpy_support.vtk_to_numpy(polydata.GetPoints().GetData()).astype(np.float64)
    polys = polydata.GetPolys()
    offsets = numpy_support.vtk_to_numpy(polys.GetOffsetsArray())
    if offsets.size > 1 and not np.all(np.diff(offsets) == 3):
        raise ValueError("the surface holds polygons that are not triangles")
    triangles = (
        numpy_support.vtk_to_numpy(polys.GetConnectivityArray()).astype(np.int64, copy=False).reshape(-1, 3)
    )
    return points, triangles


def polydata_from_arrays(points: np.ndarray, triangles: np.ndarray) -> vtk_data.vtkPolyData:
    """A polydata with ``points`` ``(N, 3)`` and triangle cells ``triangles`` ``(M, 3)``."""
    vtk_points = vtk_core.vtkPoints()
    vtk_points.SetData(numpy_support.numpy_to_vtk(np.ascontiguousarray(points, dtype=np.float64), deep=True))
    cells = vtk_data.vtkCellArray()
    offsets = np.arange(0, 3 * len(triangles) + 1, 3, dtype=np.int64)
    cells.SetData(
        numpy_support.numpy_to_vtkIdTypeArray(offsets, deep=True),
        numpy_support.numpy_to_vtkIdTypeArray(
            np.ascontiguousarray(triangles, dtype=np.int64).ravel(), deep=True
        ),
    )
    polydata = vtk_data.vtkPolyData()
    polydata.SetPoints(vtk_points)
    polydata.SetPolys(cells)
    return polydata
