"""Windowed-sinc smoothing of a closed triangle surface in numpy (Taubin, Zhang & Golub, 1996).

The same filter as 3D Slicer's (vtkWindowedSincPolyDataFilter with normalized coordinates, the
Nuttall window, no feature edges): on a closed surface every vertex is smoothed over its edge
neighbours, so the filter is a Chebyshev polynomial in the uniform mesh Laplacian, applied here
with one sparse matrix product per iteration, reusing the edge lists that the topology check has
already sorted.

The polynomial's coefficients come from a Newton search for the pass-band offset that often takes
tens to hundreds of steps and amplifies every rounding difference. They are therefore computed
with scalar C-library ``sin``/``cos``/``acos`` in the order VTK evaluates them (numpy's vectorised
trigonometry differs from the C library in the last bit on some processors, enough to move the
offset). The smoothed points then agree with VTK's to rounding for any setting
(``Testing/mesh/test_mesh_smoothing.py``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import sparse

from .measure import Topology

_NUTTALL = (0.355768, 0.487396, 0.144232, 0.012604)
_OFFSET_TOLERANCE = 1e-3
_OFFSET_STEPS = 500


@dataclass(frozen=True)
class FilterCoefficients:
    """Chebyshev coefficients of the windowed-sinc low-pass filter.

    Attributes:
        values: ``iterations + 1`` coefficients.
        converged: whether the pass-band offset was found; when it was not (a few extreme settings,
            e.g. 3 iterations at pass band 0.001) the filter shrinks or scatters the surface.
    """

    values: tuple[float, ...]
    converged: bool


def windowed_sinc(points: np.ndarray, topology: Topology, iterations: int, passband: float) -> np.ndarray:
    """Smoothed copy of ``points`` ``(N, 3)``.

    Args:
        points: vertex coordinates (any affine space; the result follows the same affine map).
        topology: the surface's topology; it must be closed, and every point used by a triangle.
        iterations: number of Chebyshev terms (>= 1).
        passband: pass band in (0, 2); smaller smooths more.

    Returns:
        The smoothed ``(N, 3)`` float64 coordinates.

    Raises:
        ValueError: the surface is not closed or has unused points.
    """
    degree = np.diff(topology.offsets)
    if not topology.closed or degree.min(initial=1) == 0:
        raise ValueError("windowed_sinc needs a closed surface whose points are all used")
    coefficients = filter_coefficients(iterations, passband).values
    size = len(points)
    mean_of_neighbours = sparse.csr_matrix(
        (np.repeat(1.0 / degree, degree), topology.neighbours, topology.offsets), shape=(size, size)
    )
    low, high = points.min(axis=0), points.max(axis=0)
    centre = 0.5 * (low + high)
    length = float(np.sqrt(((high - low) ** 2).sum())) or 1.0
    previous = (points - centre) / length
    current = 0.5 * (previous + mean_of_neighbours @ previous)
    result = coefficients[0] * previous + coefficients[1] * current
    for coefficient in coefficients[2:]:
        following = mean_of_neighbours @ current
        following += current
        following -= previous
        result += coefficient * following
        previous, current = current, following
    result *= length
    result += centre
    return result


@lru_cache(maxsize=16)
def filter_coefficients(iterations: int, passband: float) -> FilterCoefficients:
    """Windowed (Nuttall) Chebyshev coefficients with the offset that maps the pass band to 1.

    The offset is found by Newton's method (at most 500 steps, to 1e-3), as VTK does; with one
    iteration there is no offset to search and none is used.
    """
    terms = iterations + 1
    window = [
        _NUTTALL[0]
        + _NUTTALL[1] * math.cos(n * math.pi / terms)
        + _NUTTALL[2] * math.cos(2.0 * n * math.pi / terms)
        + _NUTTALL[3] * math.cos(3.0 * n * math.pi / terms)
        for n in range(terms)
    ]
    at_passband_x = 1.0 - 0.5 * passband
    theta = math.acos(at_passband_x)
    chebyshev_at_passband = [1.0, at_passband_x] + [
        math.cos(n * math.acos(at_passband_x)) for n in range(2, terms)
    ]
    offset = 0.0
    for _ in range(_OFFSET_STEPS):
        values = [window[0] * (theta + offset) / math.pi] + [
            2.0 * window[n] * math.sin(n * (theta + offset)) / (n * math.pi) for n in range(1, terms)
        ]
        if iterations <= 1:
            return FilterCoefficients(tuple(values), converged=True)
        derivative = [0.0] * terms
        derivative[iterations - 2] = 2.0 * (iterations - 1) * values[iterations - 1]
        for n in range(iterations - 3, -1, -1):
            derivative[n] = derivative[n + 2] + 2.0 * (n + 1) * values[n + 1]
        response, slope = 0.0, 0.0
        for value, slope_term, chebyshev in zip(values, derivative, chebyshev_at_passband):
            response += value * chebyshev
            slope += slope_term * chebyshev
        if abs(response - 1.0) < _OFFSET_TOLERANCE:
            return FilterCoefficients(tuple(values), converged=True)
        offset -= (response - 1.0) / slope
    return FilterCoefficients(tuple(values), converged=False)
