"""Small morphology helpers on boolean ``[z, y, x]`` masks."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage


def largest_components(mask: np.ndarray, count: int = 1, min_voxels: int = 0) -> np.ndarray:
    """The ``count`` largest connected components of ``mask`` with at least ``min_voxels`` voxels."""
    labels, n = ndimage.label(mask)
    if n == 0:
        return np.zeros_like(mask, dtype=bool)
    sizes = np.bincount(labels.ravel())[1:]
    order = np.argsort(sizes)[::-1][:count]
    keep = [index + 1 for index in order if sizes[index] >= min_voxels]
    return np.isin(labels, keep)


def fill_holes_per_slice(mask: np.ndarray) -> np.ndarray:
    """Holes filled in every axial slice (first axis) separately."""
    out = np.empty_like(mask)
    for z in range(mask.shape[0]):
        out[z] = ndimage.binary_fill_holes(mask[z])
    return out


def ball(radius_vox: Sequence[float]) -> np.ndarray:
    """Ellipsoidal structuring element with the given per-axis radii in voxels."""
    r = [max(0, int(np.floor(v))) for v in radius_vox]
    grids = np.ogrid[tuple(slice(-ri, ri + 1) for ri in r)]
    dist = sum((g / max(rv, 1e-6)) ** 2 for g, rv in zip(grids, radius_vox))
    return dist <= 1.0
