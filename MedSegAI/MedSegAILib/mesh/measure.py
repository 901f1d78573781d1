"""Topology and size of a triangle surface: closed, manifold, components, volume, area."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.sparse.csgraph import connected_components


@dataclass(frozen=True)
class SurfaceMeasures:
    """What a printer or a navigation system needs to know about a surface.

    Attributes:
        closed: every edge is shared by exactly two triangles that traverse it in
            opposite directions (watertight, consistently oriented).
        manifold: closed, and the triangles around every vertex form a single fan
            (no pinched vertices).
        components: number of connected pieces of surface.
        volume_mm3: enclosed volume (signed; positive when normals point outward).
        area_mm2: total surface area.
        triangles: number of triangles.
    """

    closed: bool
    manifold: bool
    components: int
    volume_mm3: float
    area_mm2: float
    triangles: int


def measure_surface(points: np.ndarray, triangles: np.ndarray) -> SurfaceMeasures:
    """Measure a triangle surface.

    Args:
        points: ``(N, 3)`` vertex coordinates in millimetres.
        triangles: ``(M, 3)`` vertex indices.

    Returns:
        The surface's :class:`SurfaceMeasures`.
    """
    triangles = np.asarray(triangles, dtype=np.int64)
    if len(triangles) == 0:
        return SurfaceMeasures(False, False, 0, 0.0, 0.0, 0)
    a, b, c = (points[triangles[:, n]] for n in range(3))
    cross = np.cross(b - a, c - a)
    area = 0.5 * float(np.linalg.norm(cross, axis=1).sum())
    volume = float(np.einsum("ij,ij->i", a, np.cross(b, c)).sum() / 6.0)
    closed = _is_closed(triangles)
    manifold = closed and _vertices_are_manifold(triangles)
    return SurfaceMeasures(closed, manifold, _count_components(triangles), volume, area, len(triangles))


def _directed_edges(triangles: np.ndarray) -> np.ndarray:
    return np.concatenate([triangles[:, [0, 1]], triangles[:, [1, 2]], triangles[:, [2, 0]]])


def _is_closed(triangles: np.ndarray) -> bool:
    """Each directed edge occurs once and its reverse occurs once."""
    edges = _directed_edges(triangles)
    size = int(triangles.max()) + 1
    forward = edges[:, 0] * size + edges[:, 1]
    backward = edges[:, 1] * size + edges[:, 0]
    forward_sorted = np.sort(forward)
    if np.any(forward_sorted[1:] == forward_sorted[:-1]):
        return False
    return bool(np.isin(backward, forward_sorted, assume_unique=False).all())


def _vertices_are_manifold(triangles: np.ndarray) -> bool:
    """The link of every vertex is one cycle: corner edges around a vertex chain into one loop."""
    size = int(triangles.max()) + 1
    centre = triangles.T.ravel()
    following = np.roll(triangles, -1, axis=1).T.ravel()
    opposite = np.roll(triangles, -2, axis=1).T.ravel()
    keys, inverse = np.unique(np.concatenate([centre * size + following, centre * size + opposite]), return_inverse=True)
    count = len(centre)
    graph = sparse.coo_matrix((np.ones(count), (inverse[:count], inverse[count:])), shape=(len(keys), len(keys)))
    cycles, _ = connected_components(graph, directed=False)
    return cycles == len(np.unique(triangles))


def _count_components(triangles: np.ndarray) -> int:
    used, inverse = np.unique(triangles, return_inverse=True)
    local = inverse.reshape(-1, 3)
    rows = np.concatenate([local[:, 0], local[:, 1]])
    cols = np.concatenate([local[:, 1], local[:, 2]])
    graph = sparse.coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(used), len(used)))
    components, _ = connected_components(graph, directed=False)
    return int(components)
