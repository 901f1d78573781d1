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
    cross = facet_cross_products(points, triangles)
    area = 0.5 * float(np.sqrt(np.einsum("ij,ij->i", cross, cross)).sum())
    volume = float(np.einsum("ij,ij->i", points[triangles[:, 0]], cross).sum() / 6.0)
    closed = _is_closed(triangles)
    manifold = closed and _vertices_are_manifold(triangles)
    return SurfaceMeasures(closed, manifold, _count_components(triangles), volume, area, len(triangles))


def facet_cross_products(points: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """``(b - a) x (c - a)`` per triangle: along the outward normal, twice the area long."""
    a = points[triangles[:, 0]]
    return np.cross(points[triangles[:, 1]] - a, points[triangles[:, 2]] - a)


def _directed_edge_keys(triangles: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Keys ``tail * size + head`` of every directed edge, and of its reverse."""
    tails = triangles.ravel()
    heads = np.roll(triangles, -1, axis=1).ravel()
    return tails * size + heads, heads * size + tails


def _is_closed(triangles: np.ndarray) -> bool:
    """Each directed edge occurs once, and so does its reverse (sorting only, no hashing)."""
    size = int(triangles.max()) + 1
    forward, backward = _directed_edge_keys(triangles, size)
    forward.sort()
    if np.any(forward[1:] == forward[:-1]):
        return False
    backward.sort()
    return bool(np.array_equal(forward, backward))


def _vertices_are_manifold(triangles: np.ndarray) -> bool:
    """The triangles around every vertex form one fan (call only on closed surfaces).

    Corner ``(v, a, b)`` (counter-clockwise) is followed, turning around ``v``, by the
    corner whose outgoing edge is ``v -> b``: the one of the neighbour across edge v-b.
    These successors form a permutation of the corners; the surface is vertex-manifold
    when it has exactly one cycle per vertex.
    """
    size = int(triangles.max()) + 1
    centre = triangles.ravel()
    outgoing = centre * size + np.roll(triangles, -1, axis=1).ravel()
    incoming_next = centre * size + np.roll(triangles, -2, axis=1).ravel()
    # On a closed surface both key lists hold every directed edge once: sorting pairs them up.
    successor = np.empty(len(centre), dtype=np.int64)
    successor[np.argsort(incoming_next)] = np.argsort(outgoing)
    corners = len(centre)
    graph = sparse.csr_matrix((np.ones(corners, dtype=np.int8), (np.arange(corners), successor)), shape=(corners, corners))
    cycles, _ = connected_components(graph, directed=True, connection="weak")
    used = np.zeros(size, dtype=bool)
    used[centre] = True
    return cycles == int(used.sum())


def _count_components(triangles: np.ndarray) -> int:
    """Connected pieces of surface; vertices no triangle uses are not counted."""
    size = int(triangles.max()) + 1
    rows = np.concatenate([triangles[:, 0], triangles[:, 1]])
    cols = np.concatenate([triangles[:, 1], triangles[:, 2]])
    graph = sparse.csr_matrix((np.ones(len(rows), dtype=np.int8), (rows, cols)), shape=(size, size))
    components, _ = connected_components(graph, directed=True, connection="weak")
    used = np.zeros(size, dtype=bool)
    used[triangles.ravel()] = True
    return int(components) - int(size - used.sum())
