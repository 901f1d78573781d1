"""Topology and size of a triangle surface: closed, manifold, components, volume, area."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

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


@dataclass(frozen=True)
class Topology:
    """Connectivity of a triangle surface, found with two sorts of its directed edges.

    It depends on the triangles only: moving the points (smoothing, the index -> patient
    transform) changes nothing, and reversing every triangle (a mirroring grid) keeps closed,
    manifold and components (on a closed surface, the neighbour lists too).

    Attributes:
        closed, manifold, components: as in :class:`SurfaceMeasures`.
        offsets: ``(N + 1,)``; the directed edges leaving vertex ``v`` end at
            ``neighbours[offsets[v]:offsets[v + 1]]``.
        neighbours: heads of the directed edges, grouped by tail and sorted. On a closed
            surface these are each vertex's edge neighbours, each once.
    """

    closed: bool
    manifold: bool
    components: int
    offsets: np.ndarray
    neighbours: np.ndarray


def surface_topology(triangles: np.ndarray, vertex_count: int) -> Topology:
    """Closed / manifold / components of ``triangles`` ``(M, 3)`` over ``vertex_count`` points.

    Closed: the sorted directed edges ``v -> next`` are unique and equal the sorted
    reversed edges. Manifold: corner ``(v, a, b)`` is followed, turning around ``v``, by
    the corner whose outgoing edge is ``v -> b`` (matched by the same two sorts); these
    successors form a permutation of the corners with exactly one cycle per vertex.
    Components: the connected pieces of the graph of directed edges, which the sorted edges
    already hold in compressed-row form.
    """
    triangles = np.asarray(triangles, dtype=np.int64)
    size = int(vertex_count)
    corners = triangles.size
    centre = triangles.ravel()
    # Shared by both sorts and both graphs: fewer large temporaries (their page faults cost as
    # much as the arithmetic).
    positions = np.arange(corners + 1, dtype=np.int64)
    ones = np.ones(corners)
    tails = centre * size
    (outgoing, by_outgoing), (reversed_incoming, by_reversed) = (
        _sort_with_order(np.take(triangles, turn, axis=1).ravel() + tails, size * size, positions[:-1])
        for turn in ([1, 2, 0], [2, 0, 1])
    )
    closed = not np.any(outgoing[1:] == outgoing[:-1]) and bool(np.array_equal(outgoing, reversed_incoming))
    counts = np.bincount(centre, minlength=size)
    offsets = np.zeros(size + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    neighbours = np.remainder(outgoing, size)
    used = int(np.count_nonzero(counts))
    edges = sparse.csr_matrix((ones, neighbours, offsets), shape=(size, size))
    # Closed: every edge comes with its reverse and none repeats, so the strong pieces are the weak
    # ones, found without a transpose (scipy's strong search must not see repeated entries).
    components = connected_components(edges, directed=True, connection="strong" if closed else "weak")[0] - (
        size - used
    )
    manifold = False
    if closed:
        successor = np.empty(corners, dtype=np.int64)
        successor[by_reversed] = by_outgoing
        # A permutation has no repeated entries, which scipy's strong-component search needs.
        turns = sparse.csr_matrix((ones, successor, positions), shape=(corners, corners))
        manifold = connected_components(turns, directed=True, connection="strong")[0] == used
    return Topology(closed, manifold, int(components), offsets, neighbours)


class TriangleMesh:
    """Points ``(N, 3)`` and triangles ``(M, 3)`` of one surface, with what measuring and writing share.

    Corner coordinates, facet cross products and the topology are computed once, on first use;
    a topology already known (the same triangles, or all of them reversed) can be passed in.
    """

    def __init__(self, points: np.ndarray, triangles: np.ndarray, topology: Topology | None = None) -> None:
        self.points = np.asarray(points, dtype=np.float64)
        self.triangles = np.asarray(triangles, dtype=np.int64)
        if topology is not None:
            self.__dict__["topology"] = topology  # where cached_property keeps its value

    @cached_property
    def corners(self) -> np.ndarray:
        """``(M, 3, 3)`` corner coordinates of every triangle."""
        return np.take(self.points, self.triangles, axis=0)  # several times faster than points[triangles]

    @cached_property
    def cross(self) -> np.ndarray:
        """``(b - a) x (c - a)`` per triangle: along the outward normal, twice the area long."""
        return facet_cross_products(self.corners)

    @cached_property
    def topology(self) -> Topology:
        """The triangles' :class:`Topology`."""
        return surface_topology(self.triangles, len(self.points))

    def measures(self) -> SurfaceMeasures:
        """The surface's :class:`SurfaceMeasures`."""
        if len(self.triangles) == 0:
            return SurfaceMeasures(False, False, 0, 0.0, 0.0, 0)
        cross = self.cross
        area = 0.5 * float(np.sqrt(np.einsum("ij,ij->i", cross, cross)).sum())
        volume = float(np.einsum("ij,ij->i", self.corners[:, 0], cross).sum() / 6.0)
        topology = self.topology
        return SurfaceMeasures(
            topology.closed, topology.manifold, topology.components, volume, area, len(self.triangles)
        )


def measure_surface(points: np.ndarray, triangles: np.ndarray) -> SurfaceMeasures:
    """Measure a triangle surface.

    Args:
        points: ``(N, 3)`` vertex coordinates in millimetres.
        triangles: ``(M, 3)`` vertex indices.

    Returns:
        The surface's :class:`SurfaceMeasures`.
    """
    return TriangleMesh(points, triangles).measures()


def facet_cross_products(corners: np.ndarray) -> np.ndarray:
    """``(b - a) x (c - a)`` for corners ``(M, 3, 3)``: along the outward normal, twice the area long."""
    u = corners[:, 1] - corners[:, 0]
    w = corners[:, 2] - corners[:, 0]
    cross = np.empty_like(u)
    for axis, (p, q) in enumerate(((1, 2), (2, 0), (0, 1))):
        np.multiply(u[:, p], w[:, q], out=cross[:, axis])
        cross[:, axis] -= u[:, q] * w[:, p]
    return cross


def _sort_with_order(
    keys: np.ndarray, key_limit: int, positions: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``keys`` (non-negative, below ``key_limit``; overwritten) sorted, and the order that sorts them.

    When key and position fit in 63 bits together, one in-place sort of packed
    ``key << bits | position`` does it (about twice as fast as ``argsort``); otherwise ``argsort``.
    ``positions`` is ``arange(len(keys))``.
    """
    position_bits = max(len(keys) - 1, 1).bit_length()
    if max(key_limit - 1, 1).bit_length() + position_bits <= 63:
        keys <<= position_bits
        keys |= positions
        keys.sort()
        return keys >> position_bits, keys & ((1 << position_bits) - 1)
    order = np.argsort(keys)
    return keys[order], order
