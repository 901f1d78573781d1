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

import itertools
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

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


def find_candidates(
    grid: Volume, region: np.ndarray, max_candidates: int = MAX_CANDIDATES
) -> list[Candidate]:
    """Blob candidates inside ``region`` (:func:`search_region`), most blob-like first.

    Local maxima of the best scale-normalised LoG response are ranked by
    ``response * max(blobness, 0.15)``, where blobness (0..1) is the ratio of the smallest
    to the largest Hessian eigenvalue magnitude at the maximum's own scale: 1 for a ball,
    near 0 for a vessel (no curvature along its axis) or a wall. Two intensity windows
    are searched (in parallel) and their rankings interleaved: HU clipped at +150 (solid nodules and
    masses keep their full contrast) and at -500 (vessels lose theirs, so faint
    ground-glass nodules are not outranked by them).

    Args:
        grid: CT in HU on an isotropic, identity-direction grid (the model grid).
        region: boolean map on ``grid`` where candidate centres may lie.
        max_candidates: keep at most this many.

    Returns:
        Candidates at least ``SUPPRESSION_MM`` apart (farther from large blobs).
    """
    if not region.any():
        return []
    spacing = float(np.mean(grid.spacing))
    box = _padded_box(region, int(np.ceil(2.5 * max(SIGMAS_MM) / spacing)))
    box = tuple(
        slice(s.start - s.start % 2, s.stop) for s in box
    )  # the 2x-subsampled scales stay on the grid's even voxels
    offset = np.array([s.start for s in box])

    def ranked(ceiling: float) -> list[tuple[np.ndarray, float, float]]:
        return _ranked_peaks(
            np.clip(grid.array[box], HU_FLOOR, ceiling).astype(np.float32), region[box], spacing
        )

    # The windows are independent, and SciPy's filters release the GIL: one thread each,
    # up to torch's thread count.
    with ThreadPoolExecutor(max(1, min(len(HU_CEILINGS), torch.get_num_threads()))) as pool:
        rankings = list(pool.map(ranked, HU_CEILINGS))
    interleaved = [peak for group in itertools.zip_longest(*rankings) for peak in group if peak is not None]
    kept: list[Candidate] = []
    kept_points = np.empty((0, 3))
    kept_radii = np.empty(0)
    for position, radius, rank in interleaved:
        position = position + offset
        distance = np.linalg.norm((kept_points - position) * spacing, axis=1)
        if np.any(distance < np.maximum(SUPPRESSION_MM, 0.8 * kept_radii)):
            continue
        center = grid.ijk_to_lps(position[::-1].astype(float))
        kept.append(
            Candidate(
                tuple(int(v) for v in position), tuple(float(c) for c in center), radius, rank, len(kept)
            )
        )
        kept_points = np.vstack([kept_points, position])
        kept_radii = np.append(kept_radii, radius)
        if len(kept) >= max_candidates:
            break
    return kept


def _ranked_peaks(
    image: np.ndarray, region: np.ndarray, spacing: float
) -> list[tuple[np.ndarray, float, float]]:
    """``(kji, radius_mm, rank)`` of the LoG maxima of ``image`` inside ``region``, best rank first.

    Scales from ``COARSE_FROM_MM`` on are computed on a grid subsampled by 2 (already smoothed
    enough not to alias), which makes the large scales 8 times cheaper.
    """
    levels = _scale_space(image, spacing)
    best = np.full(image.shape, -np.inf, dtype=np.float32)
    best_scale = np.zeros(image.shape, dtype=np.int8)
    better = np.empty(image.shape, dtype=bool)
    for scale, (sigma_mm, factor, blurred) in enumerate(levels):
        response = ndimage.laplace(blurred)
        response *= -((sigma_mm / (spacing * factor)) ** 2)
        if factor > 1:
            response = _upsample(response, factor, image.shape)
        np.greater(response, best, out=better)
        np.copyto(best_scale, np.int8(scale), where=better)
        np.maximum(best, response, out=best)
    size = max(3, int(round(SUPPRESSION_MM / spacing)) | 1)
    peaks = (best == ndimage.maximum_filter(best, size=size)) & (best >= MIN_RESPONSE_HU) & region
    points = np.argwhere(peaks)
    points = points[np.all((points > 0) & (points < np.array(image.shape) - 1), axis=1)]
    scales = best_scale[tuple(points.T)]
    blob = np.zeros(len(points), dtype=np.float32)
    for scale, (_, factor, blurred) in enumerate(levels):
        chosen = scales == scale
        if chosen.any():
            at = np.clip(points[chosen] // factor, 1, np.array(blurred.shape) - 2)
            blob[chosen] = _blobness(blurred, at)
    rank = best[tuple(points.T)] * np.maximum(blob, MIN_BLOBNESS)
    return [
        (points[i], float(np.sqrt(3.0) * SIGMAS_MM[scales[i]]), float(rank[i])) for i in np.argsort(-rank)
    ]


def _scale_space(image: np.ndarray, spacing: float) -> list[tuple[float, int, np.ndarray]]:
    """``(sigma_mm, subsampling factor, smoothed image)`` per scale, each smoothed from the last
    (Gaussian variances add up)."""
    levels = []
    current, done, factor = image, 0.0, 1
    for sigma_mm in SIGMAS_MM:
        if factor == 1 and sigma_mm >= COARSE_FROM_MM and min(current.shape) >= 8:
            current, factor = current[::2, ::2, ::2], 2
        current = ndimage.gaussian_filter(
            current, np.sqrt(sigma_mm**2 - done**2) / (spacing * factor), truncate=3.0
        )
        levels.append((sigma_mm, factor, current))
        done = sigma_mm
    return levels


def _upsample(values: np.ndarray, factor: int, shape: tuple[int, ...]) -> np.ndarray:
    """Nearest-neighbour upsampling by ``factor``, cut to ``shape``."""
    for axis in range(3):
        values = np.repeat(values, factor, axis=axis)
    return values[: shape[0], : shape[1], : shape[2]]


def _blobness(smoothed: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Smallest over largest Hessian eigenvalue magnitude at ``points`` when all are negative, else 0."""
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
    eigen = np.linalg.eigvalsh(hessian)  # ascending: most negative first
    ratio = np.abs(eigen[:, 2]) / np.maximum(np.abs(eigen[:, 0]), 1e-6)
    return np.where(eigen[:, 2] < 0, ratio, 0.0).astype(np.float32)


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
