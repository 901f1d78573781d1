"""One binary mask -> one closed, smoothed, outward-facing surface in patient millimetres.

Pipeline (all VTK): discrete flying edges in voxel-index space, windowed-sinc smoothing
(a polynomial in the uniform mesh Laplacian, so it commutes with the affine
index -> patient transform and can run in index space, as 3D Slicer does), the exact
index -> patient transform, outward orientation, quadric decimation in millimetres, normals.
"""

from __future__ import annotations

import logging

import numpy as np
import vtkmodules.vtkCommonDataModel as vtk_data
from vtkmodules.vtkFiltersCore import vtkPolyDataNormals, vtkQuadricDecimation, vtkWindowedSincPolyDataFilter
from vtkmodules.vtkFiltersGeneral import vtkDiscreteFlyingEdges3D

from .measure import measure_surface
from .options import MeshOptions
from .vtk_arrays import image_from_mask, polydata_arrays, polydata_from_arrays

LOG = logging.getLogger(__name__)


def mask_surface(
    mask: np.ndarray, index_to_patient: np.ndarray, options: MeshOptions, point_normals: bool = True
) -> vtk_data.vtkPolyData:
    """Surface of the voxels where ``mask`` is non-zero.

    Args:
        mask: ``[k, j, i]`` binary mask; its border voxels must be background
            (pad it by one voxel) so that the surface closes.
        index_to_patient: 4x4 matrix mapping homogeneous ``(i, j, k, 1)`` of ``mask`` to
            patient millimetres (LPS or RAS); any orientation, including det < 0.
        options: smoothing and decimation settings.
        point_normals: add smooth point normals (OBJ/PLY use them; STL stores facet normals).

    Returns:
        Triangle polydata (with point normals if asked), triangles wound counter-clockwise seen from
        outside (outward normals). Empty when the mask is empty.
    """
    extractor = vtkDiscreteFlyingEdges3D()
    binary = mask if mask.dtype == np.uint8 and mask.max(initial=0) <= 1 else (mask != 0).astype(np.uint8)
    extractor.SetInputData(image_from_mask(binary))
    extractor.SetValue(0, 1)
    extractor.ComputeNormalsOff()
    extractor.ComputeGradientsOff()
    extractor.ComputeScalarsOff()
    extractor.Update()
    surface = extractor.GetOutput()
    if surface.GetNumberOfPolys() == 0:
        return vtk_data.vtkPolyData()
    if options.smoothing_iterations > 0:
        surface = _smooth(surface, options.smoothing_iterations, options.passband)
    points, triangles = polydata_arrays(surface)
    points = points @ index_to_patient[:3, :3].T + index_to_patient[:3, 3]
    if np.linalg.det(index_to_patient[:3, :3]) < 0:
        # Flying edges winds triangles outward in index space; a left-handed grid mirrors them.
        triangles = triangles[:, ::-1].copy()
    surface = polydata_from_arrays(points, triangles)
    if options.decimate > 0:
        surface = decimate_keeping_topology(surface, options.decimate)
    return _with_normals(surface) if point_normals else surface


def _smooth(surface: vtk_data.vtkPolyData, iterations: int, passband: float) -> vtk_data.vtkPolyData:
    smoother = vtkWindowedSincPolyDataFilter()
    smoother.SetInputData(surface)
    smoother.SetNumberOfIterations(iterations)
    smoother.SetPassBand(passband)
    smoother.BoundarySmoothingOff()
    smoother.FeatureEdgeSmoothingOff()
    smoother.NonManifoldSmoothingOn()
    smoother.NormalizeCoordinatesOn()
    smoother.Update()
    return smoother.GetOutput()


def decimate_keeping_topology(surface: vtk_data.vtkPolyData, fraction: float) -> vtk_data.vtkPolyData:
    """Quadric decimation that never returns an open or non-manifold surface.

    Quadric edge collapses can pinch tiny pieces (a few voxels) into non-manifold edges.
    When that happens the fraction is halved and decimation retried; after three tries
    the undecimated (closed, manifold) surface is kept.

    Args:
        surface: closed, manifold triangle surface.
        fraction: target fraction of triangles to remove, 0 < F < 1.

    Returns:
        The decimated surface, closed and manifold.
    """
    for attempt in range(3):
        decimated = _decimate(surface, fraction / 2**attempt)
        if measure_surface(*polydata_arrays(decimated)).manifold:
            if attempt:
                LOG.warning("decimation reduced to %.3g to keep the surface closed and manifold", fraction / 2**attempt)
            return decimated
    LOG.warning("decimation skipped: it would have opened or pinched the surface")
    return surface


def _decimate(surface: vtk_data.vtkPolyData, fraction: float) -> vtk_data.vtkPolyData:
    decimator = vtkQuadricDecimation()
    decimator.SetInputData(surface)
    decimator.SetTargetReduction(fraction)
    decimator.VolumePreservationOn()
    decimator.Update()
    return decimator.GetOutput()


def _with_normals(surface: vtk_data.vtkPolyData) -> vtk_data.vtkPolyData:
    normals = vtkPolyDataNormals()
    normals.SetInputData(surface)
    normals.ComputePointNormalsOn()
    normals.ComputeCellNormalsOff()
    normals.SplittingOff()
    normals.ConsistencyOff()
    normals.AutoOrientNormalsOff()
    normals.Update()
    return normals.GetOutput()
