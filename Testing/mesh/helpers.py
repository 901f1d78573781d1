"""Shared builders for the mesh tests: grids, label maps and read-back of written meshes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from MedSegAILib.io import Volume
from stl import mesh as numpy_stl


def rotation(z_degrees: float, x_degrees: float) -> np.ndarray:
    """A rotation about S then L (columns = grid axes in LPS)."""
    a, b = np.deg2rad(z_degrees), np.deg2rad(x_degrees)
    rz = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, np.cos(b), -np.sin(b)], [0, np.sin(b), np.cos(b)]])
    return rz @ rx


def grid(
    shape_kji: tuple[int, int, int], spacing=(1.0, 1.0, 1.0), origin=(0.0, 0.0, 0.0), direction=None
) -> Volume:
    """An empty uint8 label map with the given geometry."""
    return Volume(
        np.zeros(shape_kji, dtype=np.uint8), spacing, origin, np.eye(3) if direction is None else direction
    )


def ball(volume: Volume, centre_lps, radius: float) -> np.ndarray:
    """Boolean ``[k, j, i]`` mask of voxel centres within ``radius`` mm of ``centre_lps``."""
    k, j, i = np.indices(volume.array.shape)
    centres = volume.ijk_to_lps(np.stack([i, j, k], axis=-1).reshape(-1, 3))
    inside = np.linalg.norm(centres - np.asarray(centre_lps, dtype=float), axis=1) <= radius
    return inside.reshape(volume.array.shape)


def read_stl(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Triangle corner coordinates ``(M, 3, 3)`` and stored facet normals ``(M, 3)`` of an STL."""
    surface = numpy_stl.Mesh.from_file(str(path))
    return surface.vectors.astype(float), surface.normals.astype(float)


def signed_volume(corners: np.ndarray) -> float:
    """Volume enclosed by triangles ``(M, 3, 3)``; positive when they face outward."""
    a, b, c = corners[:, 0], corners[:, 1], corners[:, 2]
    return float(np.einsum("ij,ij->i", a, np.cross(b, c)).sum() / 6.0)
