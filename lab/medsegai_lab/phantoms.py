"""Digital phantoms with analytic surfaces, for measuring mesh accuracy.

A phantom is an implicit function (negative inside) in LPS millimetres. It is voxelised by
**centre sampling**: a voxel is inside when its centre is inside; there is no partial-volume
averaging, so the label map is exactly the set of voxel centres inside the analytic shape.
The analytic surface lies, on average, half-way between inside and outside centres,
which is where discrete flying edges puts its vertices.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from MedSegAILib.io.volume import Volume

PointFunction = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Phantom:
    """An analytic solid.

    Attributes:
        name: short name.
        inside: ``(N, 3)`` LPS points -> boolean, True inside the solid.
        distance: ``(N, 3)`` LPS points -> unsigned distance (mm) to the analytic surface.
        volume_mm3: analytic volume.
        half_extent: half the size of the solid's axis-aligned box, per LPS axis (mm).
        centre: centre of that box (LPS mm).
    """

    name: str
    inside: PointFunction
    distance: PointFunction
    volume_mm3: float
    half_extent: tuple[float, float, float]
    centre: tuple[float, float, float]


def sphere(radius: float = 10.0, centre: tuple[float, float, float] = (0.0, 0.0, 0.0)) -> Phantom:
    """A ball of ``radius`` mm."""
    c = np.asarray(centre, dtype=float)

    def distance(points: np.ndarray) -> np.ndarray:
        return np.abs(np.linalg.norm(points - c, axis=1) - radius)

    return Phantom(
        "sphere",
        lambda p: np.linalg.norm(p - c, axis=1) <= radius,
        distance,
        4.0 / 3.0 * np.pi * radius**3,
        (radius,) * 3,
        tuple(c),
    )


def ellipsoid(
    semi_axes: tuple[float, float, float] = (12.0, 8.0, 6.0),
    centre: tuple[float, float, float] = (0.0, 0.0, 0.0),
) -> Phantom:
    """An axis-aligned ellipsoid with semi-axes ``(a, b, c)`` mm along L, P, S."""
    axes = np.asarray(semi_axes, dtype=float)
    c = np.asarray(centre, dtype=float)
    return Phantom(
        "ellipsoid",
        lambda p: (((p - c) / axes) ** 2).sum(axis=1) <= 1.0,
        lambda p: ellipsoid_distance(p - c, axes),
        4.0 / 3.0 * np.pi * float(np.prod(axes)),
        tuple(axes),
        tuple(c),
    )


def torus(
    major: float = 12.0, minor: float = 4.0, centre: tuple[float, float, float] = (0.0, 0.0, 0.0)
) -> Phantom:
    """A ring torus around the S axis: tube radius ``minor`` at distance ``major`` from the axis."""
    c = np.asarray(centre, dtype=float)

    def tube_distance(points: np.ndarray) -> np.ndarray:
        q = points - c
        return np.hypot(np.hypot(q[:, 0], q[:, 1]) - major, q[:, 2])

    return Phantom(
        "torus",
        lambda p: tube_distance(p) <= minor,
        lambda p: np.abs(tube_distance(p) - minor),
        2.0 * np.pi**2 * major * minor**2,
        (major + minor, major + minor, minor),
        tuple(c),
    )


def ellipsoid_distance(points: np.ndarray, semi_axes: np.ndarray, iterations: int = 80) -> np.ndarray:
    """Exact distance from points to an origin-centred, axis-aligned ellipsoid surface.

    The closest point ``x = a^2 y / (t + a^2)`` solves ``sum((a y / (t + a^2))^2) = 1`` for
    ``t > -min(a)^2``; the left side falls monotonically in ``t``, so bisection finds it.

    Args:
        points: ``(N, 3)`` points relative to the centre.
        semi_axes: ``(3,)`` semi-axes.
        iterations: bisection steps (80 reaches double precision).

    Returns:
        ``(N,)`` unsigned distances.
    """
    squared = np.asarray(semi_axes, dtype=float) ** 2
    # A coordinate of exactly 0 removes the pole the bisection relies on; 1e-9 of the
    # largest semi-axis keeps it and moves the answer by about as much.
    y = np.maximum(np.abs(np.asarray(points, dtype=float)), 1e-9 * np.sqrt(squared.max()))
    low = np.full(len(y), -squared.min())
    high = np.sqrt(squared.max()) * np.linalg.norm(y, axis=1) + 1e-9
    for _ in range(iterations):
        middle = 0.5 * (low + high)
        value = ((np.sqrt(squared) * y / (middle[:, None] + squared)) ** 2).sum(axis=1) - 1.0
        outside = value > 0
        low = np.where(outside, middle, low)
        high = np.where(outside, high, middle)
    t = 0.5 * (low + high)
    closest = squared * y / (t[:, None] + squared)
    return np.linalg.norm(y - closest, axis=1)


def voxelise(
    phantom: Phantom,
    spacing: tuple[float, float, float],
    direction: np.ndarray | None = None,
    margin_voxels: int = 3,
    label: int = 1,
) -> Volume:
    """Centre-sample ``phantom`` on a grid with ``spacing`` and ``direction`` that covers it.

    Args:
        phantom: the solid.
        spacing: voxel size along i, j, k (mm).
        direction: 3x3 matrix whose columns are the i, j, k directions in LPS (default identity);
            oblique and left-handed grids are allowed.
        margin_voxels: background voxels beyond the solid on every side.
        label: value written inside.

    Returns:
        A uint8 label-map volume.
    """
    direction = np.eye(3) if direction is None else np.asarray(direction, dtype=float)
    spacing_arr = np.asarray(spacing, dtype=float)
    half = np.asarray(phantom.half_extent)
    # Extent of the solid's box along each grid axis, plus the margin.
    reach = np.abs(direction.T) @ half / spacing_arr + margin_voxels
    size = 2 * np.ceil(reach).astype(int) + 1
    # The centre of the middle voxel sits at the phantom's centre, shifted by a small,
    # irrational fraction of a voxel so that no voxel centre lies exactly on a symmetry plane.
    middle = (size - 1) / 2.0 + np.array([0.137, 0.291, 0.173])
    origin = np.asarray(phantom.centre) - direction @ (spacing_arr * middle)
    volume = Volume(np.zeros(size[::-1], dtype=np.uint8), tuple(spacing_arr), tuple(origin), direction)
    k, j, i = np.indices(volume.array.shape)
    centres = volume.ijk_to_lps(np.stack([i.ravel(), j.ravel(), k.ravel()], axis=1))
    volume.array[...] = (phantom.inside(centres).reshape(volume.array.shape)) * label
    return volume
