"""Synthetic volumes for detection tests: ellipsoids at known LPS positions on any grid."""

from __future__ import annotations

import numpy as np
from MedSegAILib.io import Volume


def rotation(axis: str, degrees: float) -> np.ndarray:
    """A 3x3 rotation about patient axis ``x``, ``y`` or ``z``."""
    c, s = np.cos(np.radians(degrees)), np.sin(np.radians(degrees))
    if axis == "z":
        return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])
    if axis == "y":
        return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


def grid(
    shape_kji: tuple[int, int, int], spacing, origin=(0.0, 0.0, 0.0), direction=None, fill: float = 0.0
) -> Volume:
    """An empty volume of ``shape_kji`` with the given geometry."""
    return Volume(
        np.full(shape_kji, fill, dtype=np.float32),
        spacing,
        origin,
        np.eye(3) if direction is None else direction,
    )


def lps_points(volume: Volume) -> np.ndarray:
    """LPS coordinates of every voxel centre, shape ``[k, j, i, 3]``."""
    k, j, i = np.meshgrid(*[np.arange(n) for n in volume.array.shape], indexing="ij")
    return volume.ijk_to_lps(np.stack([i, j, k], axis=-1))


def ellipsoid_mask(volume: Volume, center, semi_axes, axes_rotation=None) -> np.ndarray:
    """Voxels of ``volume`` whose centres lie inside an ellipsoid given in LPS mm."""
    offset = lps_points(volume) - np.asarray(center, dtype=float)
    if axes_rotation is not None:
        offset = offset @ np.asarray(axes_rotation)  # into the ellipsoid's own axes
    return ((offset / np.asarray(semi_axes, dtype=float)) ** 2).sum(axis=-1) <= 1.0
