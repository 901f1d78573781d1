"""The numpy windowed-sinc smoother is VTK's filter (as Slicer runs it), only faster."""

from __future__ import annotations

import numpy as np
import pytest
from MedSegAILib.mesh import MeshOptions, mask_surface
from MedSegAILib.mesh.measure import TriangleMesh, surface_topology
from MedSegAILib.mesh.smoothing import filter_coefficients, windowed_sinc
from MedSegAILib.mesh.surface import _vtk_smooth
from MedSegAILib.mesh.vtk_arrays import polydata_arrays, polydata_from_arrays

from .helpers import ball, grid

# Iteration counts and pass bands with a stable filter (MeshOptions refuses the others).
STABLE_SETTINGS = [
    (iterations, passband)
    for iterations in (1, 2, 3, 5, 10, 20, 35, 60)
    for passband in (0.001, 0.01, 0.1, 0.5, 1.5)
    if filter_coefficients(iterations, passband).converged
]


def vtk_windowed_sinc(
    points: np.ndarray, triangles: np.ndarray, iterations: int, passband: float
) -> np.ndarray:
    """VTK's filter with the settings 3D Slicer uses (the engine's own VTK path, for open surfaces)."""
    return polydata_arrays(_vtk_smooth(polydata_from_arrays(points, triangles), iterations, passband))[0]


@pytest.fixture(scope="module")
def unsmoothed_surface() -> tuple[np.ndarray, np.ndarray]:
    """Flying-edges surface (index space) of two touching balls and a slab: varied valences, two pieces."""
    volume = grid((24, 24, 30))
    labels = np.zeros(volume.array.shape, np.uint8)
    labels[ball(volume, (10, 12, 12), 7)] = 1
    labels[ball(volume, (21, 12, 12), 5)] = 1
    labels[2:6, 3:20, 3:20] = 1
    padded = np.pad(labels, 1)
    points, triangles = polydata_arrays(
        mask_surface(padded, np.eye(4), MeshOptions(smoothing_iterations=0), point_normals=False)
    )
    return points, triangles


@pytest.mark.parametrize("iterations, passband", STABLE_SETTINGS)
def test_numpy_smoothing_equals_vtk(unsmoothed_surface, iterations, passband):
    points, triangles = unsmoothed_surface
    topology = surface_topology(triangles, len(points))
    assert topology.closed
    ours = windowed_sinc(points, topology, iterations, passband)
    assert np.abs(ours - vtk_windowed_sinc(points, triangles, iterations, passband)).max() < 1e-9


def test_the_default_smooths_visibly(unsmoothed_surface):
    points, triangles = unsmoothed_surface
    options = MeshOptions()
    smoothed = windowed_sinc(
        points, surface_topology(triangles, len(points)), options.smoothing_iterations, options.passband
    )
    assert np.abs(smoothed - points).max() > 0.05


def test_the_settings_tested_include_the_hard_ones():
    assert {(1, 0.01), (2, 0.1), (20, 0.01), (35, 0.001)} <= set(
        STABLE_SETTINGS
    )  # (2, 0.1): 234 Newton steps


def test_settings_without_a_stable_filter_are_refused():
    assert not filter_coefficients(3, 0.001).converged  # VTK scatters a surface to ~1e44 mm here
    with pytest.raises(ValueError, match="no stable"):
        MeshOptions(smoothing_iterations=3, passband=0.001)
    assert MeshOptions(smoothing_iterations=0, passband=0.001).smoothing_iterations == 0


def test_numpy_smoothing_refuses_an_open_surface(unsmoothed_surface):
    points, triangles = unsmoothed_surface
    with pytest.raises(ValueError, match="closed"):
        windowed_sinc(points, surface_topology(triangles[1:], len(points)), 20, 0.01)


def test_an_unpadded_mask_is_smoothed_by_vtk_and_stays_open():
    mask = np.zeros((6, 9, 10), np.uint8)
    mask[:, 2:7, 2:8] = 1  # a bar through the first and last slices: flying edges leaves its ends open
    points, triangles = polydata_arrays(mask_surface(mask, np.eye(4), MeshOptions(), point_normals=False))
    measures = TriangleMesh(points, triangles).measures()
    assert not measures.closed and len(triangles) > 0 and np.all(np.isfinite(points))
