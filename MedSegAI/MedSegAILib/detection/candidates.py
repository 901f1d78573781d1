"""Nodule candidates from the CT itself: bright blobs inside the (filled) lungs.

A nodule is a compact bright blob in dark lung. The scale-normalised Laplacian of
Gaussian ``-sigma^2 * LoG_sigma(I)`` peaks at the centre of a ball of radius ``r`` at
``sigma = r / sqrt(3)``, with a height proportional to the ball's contrast; a vessel of
the same radius answers less, and a flat wall less still. Candidates are local maxima of
the best response over a few scales, inside the lungs with their holes and notches
filled (a nodule is a hole in the predicted lung; a juxta-pleural one is a notch).

Everything is computed on the model grid (canonical LPS, isotropic, HU) that the
segmentation already produced, so the cost is a few Gaussian filters on a small grid.
Recall, not precision, is the goal here: the patch classifier (:mod:`.patch_classifier`)
sorts nodules from vessels.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch
from scipy import ndimage

from ..io.volume import Volume

SIGMAS_MM = (1.8, 2.6, 3.6, 5.0, 7.0, 9.5)
MIN_RESPONSE_HU = 40.0
CLOSING_RADIUS_MM = 10.0
BORDER_MM = 4.0
SUPPRESSION_MM = 6.0
HU_FLOOR = -1000.0
HU_CEILINGS = (150.0, -500.0)
MIN_BLOBNESS = 0.15
MAX_CANDIDATES = 300
COARSE_FROM_MM = 3.6


@dataclass(frozen=True)
class Candidate:
    """A blob: centre (model-grid ``[k, j, i]`` voxel and LPS mm), radius estimate, response
    (LoG response x blobness) and its place in the generator's ranking (0 = most blob-like)."""

    index_kji: tuple[int, int, int]
    center_lps: tuple[float, float, float]
    radius_mm: float
    response: float
    rank: int


def filled_lungs(lung: np.ndarray, spacing_mm: float) -> np.ndarray:
    """The lungs with holes and pleural notches filled (a nodule is a hole in the predicted lung,
    a juxta-pleural one a notch): the region a nodule's mask may occupy.

    A morphological closing with a ball of ``CLOSING_RADIUS_MM`` (:func:`_closing`), then every
    hole filled, in 3-D and slice by slice (holes open at the top or bottom of the stack).

    Args:
        lung: boolean lung mask on an isotropic grid.
        spacing_mm: its voxel size.
    """
    if not lung.any():
        return lung.copy()
    radius = max(1, int(round(CLOSING_RADIUS_MM / spacing_mm)))
    box = _padded_box(lung, 0)
    crop = np.pad(lung[box], radius + 1)  # room for the closing at the array's edges
    inner = tuple(slice(radius + 1, -(radius + 1)) for _ in range(3))
    filled_crop = _fill_holes(_closing(crop, radius)[inner] | lung[box])
    for k in range(filled_crop.shape[0]):
        filled_crop[k] = _fill_holes(filled_crop[k])
    filled = np.zeros_like(lung)
    filled[box] = filled_crop
    return filled


def _closing(mask: np.ndarray, radius: int) -> np.ndarray:
    """Binary closing with a polyhedral ball of ``radius`` voxels, much cheaper than two
    Euclidean distance transforms: each dilation is ``a = round(0.2 * radius)`` steps by the
    3x3x3 cube and ``radius - a`` by the 6-neighbour cross. Their Minkowski sum reaches
    ``radius`` along the axes and, for radius 5 (10 mm on the 2 mm model grid), between 0.81
    and 1.04 times it in other directions: it fills no more than the Euclidean ball would
    (a rounder but larger mix filled the left hilum of the chest series). Needs ``radius``
    background voxels around ``mask``'s foreground."""
    cubes = int(round(0.2 * radius))
    steps = [True] * cubes + [False] * (radius - cubes)
    dilated = mask
    for cube in steps:
        dilated = _dilate(dilated, cube)
    eroded = ~dilated
    for cube in steps:
        eroded = _dilate(eroded, cube)
    return ~eroded


def _dilate(mask: np.ndarray, cube: bool) -> np.ndarray:
    """One dilation by the 3x3x3 cube (``cube``, separable along the axes) or the 6-neighbour cross."""
    source = mask
    out = mask.copy()
    for axis in range(3):
        ahead = [slice(None)] * 3
        behind = [slice(None)] * 3
        ahead[axis], behind[axis] = slice(1, None), slice(None, -1)
        if cube:
            source = out.copy()
        out[tuple(ahead)] |= source[tuple(behind)]
        out[tuple(behind)] |= source[tuple(ahead)]
    return out


def search_region(filled: np.ndarray, lung: np.ndarray, spacing_mm: float) -> np.ndarray:
    """Where a candidate centre may lie: the filled lungs plus a thin border around the lungs,
    since a juxta-pleural or juxta-mediastinal nodule's centre may sit just outside them."""
    return filled | ndimage.binary_dilation(lung, iterations=max(1, int(round(BORDER_MM / spacing_mm))))


@dataclass(frozen=True)
class PeakTable:
    """Every LoG maximum of both HU windows inside the search region, before any selection.

    ``points`` are model-grid ``[k, j, i]`` voxels, ``radii_mm`` the radius of each maximum's
    best scale, ``classical`` its classical rank value (response x blobness) within its own
    window (``windows``: index into ``HU_CEILINGS``), and ``features`` the descriptors a
    learned ranker (:mod:`.candidate_ranker`) reads, in the order of ``FEATURE_NAMES``.
    """

    points: np.ndarray
    radii_mm: np.ndarray
    classical: np.ndarray
    windows: np.ndarray
    features: np.ndarray


FEATURE_NAMES = (
    ("window", "log_response", "scale", "blobness", "hessian_ratio_2_1", "hessian_ratio_3_1")
    + tuple(f"log_profile_{sigma}mm" for sigma in SIGMAS_MM)
    + tuple(f"hu_at_{sigma}mm" for sigma in SIGMAS_MM)
    + tuple(f"is_scale_{sigma}mm" for sigma in SIGMAS_MM)
)
"""Per maximum: its window, log of its best scale-normalised LoG response, the index of that
scale, the blobness and the two Hessian eigenvalue ratios there, the response at every scale
over the best one, the smoothed HU (solid window, /1000) at every scale, and the scale one-hot."""


def peak_table(grid: Volume, region: np.ndarray) -> PeakTable:
    """The LoG maxima of both HU windows inside ``region`` with their features (:class:`PeakTable`).

    Args:
        grid: CT in HU on an isotropic, identity-direction grid (the model grid).
        region: boolean map on ``grid`` where candidate centres may lie (:func:`search_region`).
    """
    spacing = float(np.mean(grid.spacing))
    box = _padded_box(region, int(np.ceil(2.5 * max(SIGMAS_MM) / spacing)))
    box = tuple(slice(s.start - s.start % 2, s.stop) for s in box)  # the 2x-subsampled scales stay on the grid's even voxels
    offset = np.array([s.start for s in box])

    def window(ceiling: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list]:
        return _window_peaks(np.clip(grid.array[box], HU_FLOOR, ceiling).astype(np.float32), region[box], spacing)

    # The windows are independent, and SciPy's filters release the GIL: one thread each, up to torch's thread count.
    with ThreadPoolExecutor(max(1, min(len(HU_CEILINGS), torch.get_num_threads()))) as pool:
        windows = list(pool.map(window, HU_CEILINGS))
    solid_levels = windows[0][4]
    features = []
    for index, (points, scales, classical, descriptors, _) in enumerate(windows):
        hu = np.stack([_sample(blurred, points, factor) for _, factor, blurred in solid_levels], axis=1) / 1000.0
        one_hot = np.eye(len(SIGMAS_MM), dtype=np.float32)[scales]
        features.append(np.column_stack([np.full(len(points), index), descriptors[:, :1], scales, descriptors[:, 1:], hu, one_hot]))
    return PeakTable(
        points=np.concatenate([w[0] for w in windows]).reshape(-1, 3) + offset,
        radii_mm=np.sqrt(3.0) * np.array(SIGMAS_MM)[np.concatenate([w[1] for w in windows]).astype(int)],
        classical=np.concatenate([w[2] for w in windows]),
        windows=np.concatenate([np.full(len(w[0]), i) for i, w in enumerate(windows)]).astype(int),
        features=np.concatenate(features).astype(np.float32).reshape(-1, len(FEATURE_NAMES)),
    )


def find_candidates(grid: Volume, region: np.ndarray, max_candidates: int = MAX_CANDIDATES,
                    ranker: Optional[Callable[[np.ndarray], np.ndarray]] = None) -> list[Candidate]:
    """Blob candidates inside ``region`` (:func:`search_region`), best first.

    The maxima of :func:`peak_table` are ordered in one of two ways:

    - classical (no ``ranker``): each window's maxima by ``response * max(blobness, 0.15)``,
      where blobness (0..1) is the ratio of the smallest to the largest Hessian eigenvalue
      magnitude at the maximum's own scale (1 for a ball, near 0 for a vessel or a wall); the
      two windows' rankings interleaved. HU clipped at +150 keeps solid nodules and masses at
      full contrast; clipped at -500, vessels lose theirs, so faint ground-glass nodules are
      not outranked by them.
    - learned: ``ranker`` maps the table's features to scores (:mod:`.candidate_ranker`); two of
      every three places go to its ranking, the third to the solid window's classical ranking,
      so that solid nodules keep the classical guarantee.

    Args:
        grid: CT in HU on an isotropic, identity-direction grid (the model grid).
        region: boolean map on ``grid`` where candidate centres may lie.
        max_candidates: keep at most this many.
        ranker: scores ``(n,)`` of a feature matrix ``(n, len(FEATURE_NAMES))``, higher first.

    Returns:
        Candidates at least ``SUPPRESSION_MM`` apart (farther from large blobs).
    """
    if not region.any():
        return []
    spacing = float(np.mean(grid.spacing))
    table = peak_table(grid, region)
    per_window = [np.flatnonzero(table.windows == w)[np.argsort(-table.classical[table.windows == w])]
                  for w in range(len(HU_CEILINGS))]
    if ranker is None:
        order = _merged(per_window)
    else:
        learned = np.argsort(-ranker(table.features), kind="stable")
        order = _merged([learned, learned, per_window[0]])
    kept: list[Candidate] = []
    kept_points = np.empty((0, 3))
    kept_radii = np.empty(0)
    for index in order:
        position, radius = table.points[index], table.radii_mm[index]
        distance = np.linalg.norm((kept_points - position) * spacing, axis=1)
        if np.any(distance < np.maximum(SUPPRESSION_MM, 0.8 * kept_radii)):
            continue
        center = grid.ijk_to_lps(position[::-1].astype(float))
        kept.append(Candidate(tuple(int(v) for v in position), tuple(float(c) for c in center), float(radius),
                              float(table.classical[index]), len(kept)))
        kept_points = np.vstack([kept_points, position])
        kept_radii = np.append(kept_radii, radius)
        if len(kept) >= max_candidates:
            break
    return kept


def _merged(orders: Sequence[np.ndarray]) -> Iterator[int]:
    """The indices of ``orders`` taken in turn (one from each, round and round), each index once.
    The same order given twice gets two turns per round."""
    seen: set[int] = set()
    positions = [0] * len(orders)
    while any(p < len(o) for p, o in zip(positions, orders)):
        for turn, order in enumerate(orders):
            while positions[turn] < len(order) and int(order[positions[turn]]) in seen:
                positions[turn] += 1
            if positions[turn] < len(order):
                index = int(order[positions[turn]])
                seen.add(index)
                positions[turn] += 1
                yield index


def _window_peaks(image: np.ndarray, region: np.ndarray, spacing: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list]:
    """The LoG maxima of ``image`` inside ``region``: ``kji`` points, best-scale index, classical
    rank value, descriptors ``(log response, blobness, Hessian ratios 2/1 and 3/1, response at every
    scale over the best)`` and the scale space (:func:`_scale_space`).

    Scales from ``COARSE_FROM_MM`` on are computed on a grid subsampled by 2 (already smoothed
    enough not to alias), which makes the large scales 8 times cheaper.
    """
    levels = _scale_space(image, spacing)
    best = np.full(image.shape, -np.inf, dtype=np.float32)
    best_scale = np.zeros(image.shape, dtype=np.int8)
    better = np.empty(image.shape, dtype=bool)
    responses = []
    for scale, (sigma_mm, factor, blurred) in enumerate(levels):
        response = ndimage.laplace(blurred)
        response *= -(sigma_mm / (spacing * factor)) ** 2
        responses.append((response, factor))
        if factor > 1:
            response = _upsample(response, factor, image.shape)
        np.greater(response, best, out=better)
        np.copyto(best_scale, np.int8(scale), where=better)
        np.maximum(best, response, out=best)
    size = max(3, int(round(SUPPRESSION_MM / spacing)) | 1)
    peaks = (best == ndimage.maximum_filter(best, size=size)) & (best >= MIN_RESPONSE_HU) & region
    points = np.argwhere(peaks)
    points = points[np.all((points > 0) & (points < np.array(image.shape) - 1), axis=1)]
    scales = best_scale[tuple(points.T)].astype(int)
    eigen = np.zeros((len(points), 3))
    for scale, (_, factor, blurred) in enumerate(levels):
        chosen = scales == scale
        if chosen.any():
            eigen[chosen] = _hessian_eigenvalues(blurred, np.clip(points[chosen] // factor, 1, np.array(blurred.shape) - 2))
    largest = np.minimum(eigen[:, 0], -1e-6)  # ascending: the most negative first
    blob = np.where(eigen[:, 2] < 0, np.abs(eigen[:, 2]) / np.abs(largest), 0.0).astype(np.float32)
    response = best[tuple(points.T)]
    profile = np.stack([_sample(values, points, factor) for values, factor in responses], axis=1) / response[:, None].astype(np.float64)
    descriptors = np.column_stack([np.log(response), blob, eigen[:, 1] / largest, eigen[:, 2] / largest, profile])
    return points, scales, response * np.maximum(blob, MIN_BLOBNESS), descriptors, levels


def _sample(values: np.ndarray, points: np.ndarray, factor: int) -> np.ndarray:
    """``values`` (a scale-space level subsampled by ``factor``) at full-grid ``points``."""
    return values[tuple(np.clip(points // factor, 0, np.array(values.shape) - 1).T)].astype(np.float64)


def _scale_space(image: np.ndarray, spacing: float) -> list[tuple[float, int, np.ndarray]]:
    """``(sigma_mm, subsampling factor, smoothed image)`` per scale, each smoothed from the last
    (Gaussian variances add up)."""
    levels = []
    current, done, factor = image, 0.0, 1
    for sigma_mm in SIGMAS_MM:
        if factor == 1 and sigma_mm >= COARSE_FROM_MM and min(current.shape) >= 8:
            current, factor = current[::2, ::2, ::2], 2
        current = ndimage.gaussian_filter(current, np.sqrt(sigma_mm ** 2 - done ** 2) / (spacing * factor), truncate=3.0)
        levels.append((sigma_mm, factor, current))
        done = sigma_mm
    return levels


def _upsample(values: np.ndarray, factor: int, shape: tuple[int, ...]) -> np.ndarray:
    """Nearest-neighbour upsampling by ``factor``, cut to ``shape``."""
    for axis in range(3):
        values = np.repeat(values, factor, axis=axis)
    return values[:shape[0], :shape[1], :shape[2]]


def _hessian_eigenvalues(smoothed: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Hessian eigenvalues ``(n, 3)``, ascending, of ``smoothed`` at ``points`` (central differences)."""
    k, j, i = points.T
    def at(dk: int, dj: int, di: int) -> np.ndarray:
        return smoothed[k + dk, j + dj, i + di].astype(np.float64)
    centre = at(0, 0, 0)
    hessian = np.empty((len(points), 3, 3))
    steps = ((1, 0, 0), (0, 1, 0), (0, 0, 1))
    for a in range(3):
        plus, minus = steps[a], tuple(-v for v in steps[a])
        hessian[:, a, a] = at(*plus) + at(*minus) - 2 * centre
        for b in range(a + 1, 3):
            pp = tuple(x + y for x, y in zip(steps[a], steps[b]))
            pm = tuple(x - y for x, y in zip(steps[a], steps[b]))
            value = (at(*pp) + at(*(-v for v in pp)) - at(*pm) - at(*(-v for v in pm))) / 4.0
            hessian[:, a, b] = hessian[:, b, a] = value
    return np.linalg.eigvalsh(hessian)


def _fill_holes(mask: np.ndarray) -> np.ndarray:
    """``mask`` with every background region that does not touch the array's border filled
    (what ``ndimage.binary_fill_holes`` does, in one labelling pass instead of iterated dilations)."""
    background, _ = ndimage.label(~mask)
    edges = np.concatenate([np.take(background, [0, -1], axis=axis).ravel() for axis in range(mask.ndim)])
    return ~np.isin(background, np.unique(edges[edges > 0]))


def _padded_box(mask: np.ndarray, pad: int) -> tuple[slice, slice, slice]:
    """Bounding box of ``mask`` grown by ``pad`` voxels, clipped to the array."""
    box = ndimage.find_objects(mask.astype(np.uint8))[0]
    return tuple(slice(max(s.start - pad, 0), min(s.stop + pad, n)) for s, n in zip(box, mask.shape))  # type: ignore[return-value]
