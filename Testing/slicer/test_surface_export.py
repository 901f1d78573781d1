"""Slicer's own surface path (closed-surface representation + segment export) matches the
engine's meshes and the label's physical bounds, in LPS and in RAS (issue 6)."""

from __future__ import annotations

import numpy as np
import pytest

slicer = pytest.importorskip("slicer", reason="needs slicer-core (pip install slicer-core)")

from MedSegAILib.io import Volume  # noqa: E402
from MedSegAILib.mesh import MeshOptions, export_label_meshes  # noqa: E402
from MedSegAILib.slicer.surface_export import (  # noqa: E402
    SLICER_SMOOTHING_ITERATIONS,
    export_surfaces_with_slicer,
    slicer_conversion_parameters,
)
from stl import mesh as numpy_stl  # noqa: E402

NAMES = {1: ("left lung", (128, 174, 128)), 2: ("lung nodule", (255, 0, 0))}


def oblique_labels() -> Volume:
    """An ellipsoid and a box on an anisotropic grid rotated about two axes."""
    a, b = np.deg2rad(20.0), np.deg2rad(-10.0)
    rz = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, np.cos(b), -np.sin(b)], [0, np.sin(b), np.cos(b)]])
    grid = Volume(np.zeros((30, 36, 40), np.uint8), (0.7, 0.9, 2.5), (-120.5, 30.25, -200.0), rz @ rx)
    k, j, i = np.indices(grid.array.shape)
    labels = np.zeros(grid.array.shape, np.uint8)
    labels[((i - 20) / 12.0) ** 2 + ((j - 18) / 10.0) ** 2 + ((k - 15) / 8.0) ** 2 <= 1] = 1
    labels[3:8, 4:9, 30:36] = 2
    return grid.with_array(labels)


def vertices(path) -> np.ndarray:
    return numpy_stl.Mesh.from_file(str(path)).vectors.reshape(-1, 3).astype(float)


def label_bounds(volume: Volume, value: int, coords: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    k, j, i = np.nonzero(volume.array == value)
    centres = volume.ijk_to_lps(np.stack([i, j, k], axis=1).astype(float))
    if coords == "ras":
        centres = centres * [-1, -1, 1]
    half_voxel = 0.5 * np.abs(volume.direction @ np.diag(volume.spacing)).sum(axis=1)
    return centres.min(axis=0), centres.max(axis=0), half_voxel


def test_options_map_onto_slicer_conversion_parameters():
    assert slicer_conversion_parameters(MeshOptions())["Smoothing factor"] == "0.5"
    assert slicer_conversion_parameters(MeshOptions(smoothing_iterations=0))["Smoothing factor"] == "0"
    assert slicer_conversion_parameters(MeshOptions(passband=0.1, decimate=0.3))["Decimation factor"] == "0.3"


@pytest.mark.parametrize("coords", ["lps", "ras"])
@pytest.mark.parametrize("smoothing", ["off", "default"])
def test_slicer_and_engine_give_the_same_vertices_within_the_label_bounds(scene, tmp_path, coords, smoothing):
    """Unsmoothed, and at Slicer's default smoothing (engine with Slicer's iteration count)."""
    volume = oblique_labels()
    iterations = 0 if smoothing == "off" else SLICER_SMOOTHING_ITERATIONS
    options = MeshOptions(coords=coords, smoothing_iterations=iterations)
    slicer_files = export_surfaces_with_slicer(
        scene, volume.array, volume, NAMES, tmp_path / "slicer", options
    )
    reports = export_label_meshes(volume.array, volume, NAMES, tmp_path / "engine", options)
    assert {value: path.name for value, path in slicer_files.items()} == {r.label: r.file for r in reports}
    for report in reports:
        from_slicer = vertices(slicer_files[report.label])
        from_engine = vertices(tmp_path / "engine" / report.file)
        assert from_slicer.shape == from_engine.shape
        assert np.abs(from_slicer - from_engine).max() < 1e-3
        if smoothing == "default" and report.label == 2:
            continue  # smoothing rounds a small box's corners and may overshoot its faces
        low, high, half_voxel = label_bounds(volume, report.label, coords)
        for points in (from_slicer, from_engine):
            assert np.all(points.min(axis=0) >= low - half_voxel - 1e-3)
            assert np.all(points.max(axis=0) <= high + half_voxel + 1e-3)
            assert np.all(points.min(axis=0) <= low + half_voxel)
            assert np.all(points.max(axis=0) >= high - half_voxel)


def test_engine_default_smoothing_stays_close_to_slicers(scene, tmp_path):
    """The engine's default (20 iterations, better volume on coarse grids) vs Slicer's default."""
    volume = oblique_labels()
    slicer_files = export_surfaces_with_slicer(
        scene, volume.array, volume, NAMES, tmp_path / "slicer", MeshOptions()
    )
    reports = export_label_meshes(volume.array, volume, NAMES, tmp_path / "engine", MeshOptions())
    ellipsoid = reports[0]
    difference = np.linalg.norm(
        vertices(slicer_files[1]) - vertices(tmp_path / "engine" / ellipsoid.file), axis=1
    )
    assert difference.mean() < 0.25  # mm, on a 0.7 x 0.9 x 2.5 mm grid


def test_slicer_export_is_not_mirrored(scene, tmp_path):
    volume = oblique_labels()
    lps_files = export_surfaces_with_slicer(
        scene, volume.array, volume, NAMES, tmp_path / "lps", MeshOptions()
    )
    ras_files = export_surfaces_with_slicer(
        scene, volume.array, volume, NAMES, tmp_path / "ras", MeshOptions(coords="ras")
    )
    k, j, i = np.nonzero(volume.array == 1)
    centre_lps = volume.ijk_to_lps(np.stack([i, j, k], axis=1).astype(float)).mean(axis=0)
    assert vertices(lps_files[1]).mean(axis=0) == pytest.approx(centre_lps, abs=0.3)
    assert vertices(ras_files[1]).mean(axis=0) == pytest.approx(centre_lps * [-1, -1, 1], abs=0.3)
