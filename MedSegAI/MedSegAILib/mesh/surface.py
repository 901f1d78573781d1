"""One binary mask -> one closed, smoothed, outward-facing surface in patient millimetres.

Pipeline: VTK's discrete flying edges in voxel-index space; the topology check (two sorts
of the directed edges, see :mod:`.measure`), whose sorted edge lists also drive the
windowed-sinc smoothing (:mod:`.smoothing`; a polynomial in the uniform mesh Laplacian, so
it commutes with the affine index -> patient transform and can run in index space, as
3D Slicer does); the exact index -> patient transform; outward orientation; quadric
decimation in millimetres; normals for OBJ/PLY.
"""

from __future__ import annotations

import logging

import numpy as np
import vtkmodules.vtkCommonDataModel as vtk_data
from vtkmodules.vtkFiltersCore import vtkPolyDataNormals, vtkQuadricDecimation, vtkWindowedSincPolyDataFilter
from vtkmodules.vtkFiltersGeneral import vtkDiscreteFlyingEdges3D

from .measure import TriangleMesh
from .options import MeshOptions
from .smoothing import windowed_sinc
from .vtk_arrays import image_from_mask, polydata_arrays, polydata_from_arrays

LOG = logging.getLogger(__name__)


def surface_mesh(mask: np.ndarray, index_to_patient: np.ndarray, options: MeshOptions) -> TriangleMesh:
    """Surface of the voxels where ``mask`` is non-zero, as points and triangles with their topology.

    Args:
        mask: ``[k, j, i]`` binary mask; its border voxels must be background
            (pad it by one voxel) so that the surface closes.
        index_to_patient: 4x4 matrix mapping homogeneous ``(i, j, k, 1)`` of ``mask`` to
            patient millimetres (LPS or RAS); any orientation, including det < 0.
        options: smoothing and decimation settings.

    Returns:
        The surface, triangles wound counter-clockwise seen from outside (outward normals).
        Empty when the mask is empty.
    """
    extractor = vtkDiscreteFlyingEdges3D()
    if mask.dtype == bool:
        binary = mask.view(np.uint8)
    elif mask.dtype == np.uint8 and mask.max(initial=0) <= 1:
        binary = mask
    else:
        binary = (mask != 0).astype(np.uint8)
    extractor.SetInputData(image_from_mask(binary))
    extractor.SetValue(0, 1)
    extractor.ComputeNormalsOff()
    extractor.ComputeGradientsOff()
    extractor.ComputeScalarsOff()
    extractor.Update()
    surface = extractor.GetOutput()
    points, triangles = polydata_arrays(surface)
    mesh = TriangleMesh(points, triangles)
    if len(triangles) == 0:
        return mesh
    if options.smoothing_iterations > 0:
        if mesh.topology.closed:
            points = windowed_sinc(points, mesh.topology, options.smoothing_iterations, options.passband)
        else:  # an unpadded mask: VTK's filter, which also handles boundary edges
            points = polydata_arrays(_vtk_smooth(surface, options.smoothing_iterations, options.passband))[0]
    points = _affine(points, index_to_patient)
    if np.linalg.det(index_to_patient[:3, :3]) < 0:
        # Flying edges winds triangles outward in index space; a left-handed grid mirrors them.
        triangles = triangles[:, ::-1]
    # Moving the points and reversing every triangle leave the topology as it is.
    mesh = TriangleMesh(points, triangles, mesh.topology)
    if options.decimate > 0:
        mesh = decimate_keeping_topology(mesh, options.decimate)
    return mesh


def mask_surface(
    mask: np.ndarray, index_to_patient: np.ndarray, options: MeshOptions, point_normals: bool = True
) -> vtk_data.vtkPolyData:
    """:func:`surface_mesh` as triangle polydata, with smooth point normals if ``point_normals``."""
    mesh = surface_mesh(mask, index_to_patient, options)
    if len(mesh.triangles) == 0:
        return vtk_data.vtkPolyData()
    surface = polydata_from_arrays(mesh.points, mesh.triangles)
    return with_point_normals(surface) if point_normals else surface


def decimate_keeping_topology(mesh: TriangleMesh, fraction: float) -> TriangleMesh:
    """Quadric decimation that never returns an open or non-manifold surface.

    Quadric edge collapses can pinch tiny pieces (a few voxels) into non-manifold edges.
    When that happens the fraction is halved and decimation retried; after three tries
    the undecimated (closed, manifold) surface is kept.

    Args:
        mesh: closed, manifold triangle surface.
        fraction: target fraction of triangles to remove, 0 < F < 1.

    Returns:
        The decimated surface (its topology already checked), closed and manifold.
    """
    surface = polydata_from_arrays(mesh.points, mesh.triangles)
    for attempt in range(3):
        decimated = TriangleMesh(*polydata_arrays(_decimate(surface, fraction / 2**attempt)))
        if decimated.topology.manifold:
            if attempt:
                LOG.warning(
                    "decimation reduced to %.3g to keep the surface closed and manifold",
                    fraction / 2**attempt,
                )
            return decimated
    LOG.warning("decimation skipped: it would have opened or pinched the surface")
    return mesh


def with_point_normals(surface: vtk_data.vtkPolyData) -> vtk_data.vtkPolyData:
    """``surface`` with smooth point normals (no splitting, orientation as wound)."""
    normals = vtkPolyDataNormals()
    normals.SetInputData(surface)
    normals.ComputePointNormalsOn()
    normals.ComputeCellNormalsOff()
    normals.SplittingOff()
    normals.ConsistencyOff()
    normals.AutoOrientNormalsOff()
    normals.Update()
    return normals.GetOutput()


def _affine(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """``points @ matrix[:3, :3].T + matrix[:3, 3]`` without BLAS, whose threads stall on a busy machine."""
    result = points[:, :1] * matrix[:3, 0]
    result += points[:, 1:2] * matrix[:3, 1]
    result += points[:, 2:3] * matrix[:3, 2]
    result += matrix[:3, 3]
    return result


def _vtk_smooth(surface: vtk_data.vtkPolyData, iterations: int, passband: float) -> vtk_data.vtkPolyData:
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


def _decimate(surface: vtk_data.vtkPolyData, fraction: float) -> vtk_data.vtkPolyData:
    decimator = vtkQuadricDecimation()
    decimator.SetInputData(surface)
    decimator.SetTargetReduction(fraction)
    decimator.VolumePreservationOn()
    decimator.Update()
    return decimator.GetOutput()
