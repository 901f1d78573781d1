"""Coordinates (issue 6): exact LPS/RAS millimetres from the label map's geometry, oblique and
left-handed grids included, never mirrored, triangles always facing outward."""

from __future__ import annotations

import numpy as np
import pytest
from MedSegAILib.mesh import MeshOptions, export_label_meshes

from .helpers import ball, grid, read_stl, rotation, signed_volume

OBLIQUE = dict(spacing=(0.7, 1.1, 2.5), origin=(-80.0, 40.0, -120.0), direction=rotation(30.0, -20.0))
RAS_FROM_LPS = np.array([-1.0, -1.0, 1.0])


def physical_bounds(volume, mask, coords: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bounds of the label's voxel centres, and half a voxel's extent, per axis of ``coords``."""
    k, j, i = np.nonzero(mask)
    centres = volume.ijk_to_lps(np.stack([i, j, k], axis=1).astype(float))
    half_voxel = 0.5 * np.abs(volume.direction @ np.diag(volume.spacing)).sum(axis=1)
    if coords == "ras":
        centres = centres * RAS_FROM_LPS
    return centres.min(axis=0), centres.max(axis=0), half_voxel


@pytest.mark.parametrize("coords", ["lps", "ras"])
@pytest.mark.parametrize("smoothing", [0, 20])
def test_oblique_anisotropic_vertex_bounds_match_the_label_within_half_a_voxel(tmp_path, coords, smoothing):
    volume = grid((24, 40, 50), **OBLIQUE)
    labels = np.zeros(volume.array.shape, np.uint8)
    labels[4:20, 8:30, 10:42] = 2
    export_label_meshes(
        labels,
        volume,
        {2: ("box", (255, 0, 0))},
        tmp_path,
        MeshOptions(coords=coords, smoothing_iterations=smoothing),
    )
    corners, _ = read_stl(tmp_path / "box.stl")
    vertices = corners.reshape(-1, 3)
    low, high, half_voxel = physical_bounds(volume, labels == 2, coords)
    # Vertices lie half-way between inside and outside voxel centres: beyond the centres,
    # by at most half a voxel.
    assert np.all(vertices.min(axis=0) >= low - half_voxel - 1e-3)
    assert np.all(vertices.max(axis=0) <= high + half_voxel + 1e-3)
    assert np.all(vertices.min(axis=0) <= low + half_voxel)
    assert np.all(vertices.max(axis=0) >= high - half_voxel)
    assert signed_volume(corners) > 0


def test_unsmoothed_vertices_are_exactly_half_a_voxel_outside_in_index_space(tmp_path):
    volume = grid((24, 40, 50), **OBLIQUE)
    labels = np.zeros(volume.array.shape, np.uint8)
    labels[4:20, 8:30, 10:42] = 1
    export_label_meshes(labels, volume, {}, tmp_path, MeshOptions(smoothing_iterations=0))
    corners, _ = read_stl(tmp_path / "label_1.stl")
    ijk = volume.lps_to_ijk(corners.reshape(-1, 3))
    assert ijk.min(axis=0) == pytest.approx([9.5, 7.5, 3.5], abs=1e-3)
    assert ijk.max(axis=0) == pytest.approx([41.5, 29.5, 19.5], abs=1e-3)


@pytest.mark.parametrize(
    "direction",
    [
        np.eye(3),
        np.diag([-1.0, -1.0, 1.0]),
        np.diag([1.0, 1.0, -1.0]),
        rotation(15, 5) @ np.diag([-1.0, 1.0, 1.0]),
    ],
    ids=["lps-grid", "ras-grid", "inferior-slices", "oblique-left-handed"],
)
def test_a_blob_on_the_patients_left_is_not_mirrored_and_faces_outward(tmp_path, direction):
    volume = grid((40, 40, 40), spacing=(1.0, 1.0, 1.0), origin=(0.0, 0.0, 0.0), direction=direction)
    volume = volume.with_array(volume.array)
    centre_index = np.array([20.0, 20.0, 20.0])
    volume.origin = tuple(-(direction @ centre_index))  # grid centred on the patient origin
    labels = np.zeros(volume.array.shape, np.uint8)
    labels[ball(volume, (10.0, 0.0, 0.0), 5.0)] = 1  # 10 mm to the patient's left (LPS +x)
    assert labels.sum() > 400
    for coords, sign in (("lps", 1.0), ("ras", -1.0)):
        out = tmp_path / coords
        export_label_meshes(labels, volume, {1: ("left blob", (0, 255, 0))}, out, MeshOptions(coords=coords))
        corners, normals = read_stl(out / "left_blob.stl")
        vertices = corners.reshape(-1, 3)
        assert sign * vertices[:, 0].mean() == pytest.approx(10.0, abs=0.1)
        assert np.all(sign * vertices[:, 0] > 0)
        assert signed_volume(corners) == pytest.approx(4 / 3 * np.pi * 125, rel=0.05)
        outward = corners.mean(axis=1) - vertices.mean(axis=0)
        assert np.mean(np.einsum("ij,ij->i", normals, outward) > 0) > 0.99
