"""Classical lung pseudo-labels for unlabelled chest CT (training targets, not ground truth).

Works on a canonical LPS array ``[z, y, x]`` (z towards Superior, y towards Posterior,
x towards the patient's Left) with known spacing (x, y, z) mm:

1. body: tissue above -500 HU, holes filled per axial slice, largest 3-D component;
2. air inside the body: below ``air_threshold`` HU; outside air is gone with the body mask;
3. airway (trachea and main bronchi): region growing from a seed found automatically in
   the upper slices, with a threshold raised step by step until the region leaks;
4. lungs: the largest air components that remain (airway removed), split into left and
   right by erosion when they touch, each closed and hole-filled per slice and in 3-D so
   vessels and nodules inside the lung belong to it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
from scipy import ndimage

AIR_THRESHOLD_HU = -450.0
BODY_THRESHOLD_HU = -500.0
OUTSIDE_AIR_MEDIAN_HU = -975.0


@dataclass
class LungLabels:
    """Pseudo-label masks on the input grid (all boolean ``[z, y, x]``)."""

    body: np.ndarray
    airway: np.ndarray
    left_lung: np.ndarray
    right_lung: np.ndarray

    @property
    def lung(self) -> np.ndarray:
        """Both lungs."""
        return self.left_lung | self.right_lung


def _largest_components(mask: np.ndarray, count: int = 1, min_voxels: int = 0) -> np.ndarray:
    labels, n = ndimage.label(mask)
    if n == 0:
        return np.zeros_like(mask, dtype=bool)
    sizes = np.bincount(labels.ravel())[1:]
    order = np.argsort(sizes)[::-1][:count]
    keep = [index + 1 for index in order if sizes[index] >= min_voxels]
    return np.isin(labels, keep)


def _fill_holes_per_slice(mask: np.ndarray) -> np.ndarray:
    out = np.empty_like(mask)
    for z in range(mask.shape[0]):
        out[z] = ndimage.binary_fill_holes(mask[z])
    return out


def _ball(radius_vox: Sequence[float]) -> np.ndarray:
    r = [max(0, int(np.floor(v))) for v in radius_vox]
    grids = np.ogrid[tuple(slice(-ri, ri + 1) for ri in r)]
    dist = sum((g / max(rv, 1e-6)) ** 2 for g, rv in zip(grids, radius_vox))
    return dist <= 1.0


def body_mask(hu: np.ndarray, spacing: Sequence[float]) -> np.ndarray:
    """The patient's body: tissue above -500 HU with enclosed air filled, largest component.

    Args:
        hu: CT ``[z, y, x]`` in HU.
        spacing: voxel size (x, y, z) mm.

    Returns:
        Boolean mask ``[z, y, x]``.
    """
    tissue = hu > BODY_THRESHOLD_HU
    # A small opening detaches the table and thin blanket folds from the body.
    radius = [min(2.0, 3.0 / spacing[2]), 3.0 / spacing[1], 3.0 / spacing[0]]
    tissue = ndimage.binary_opening(tissue, structure=_ball(radius))
    body = _largest_components(tissue, 1)
    if _field_of_view_inside_body(body):
        return _cropped_body(hu)
    return _fill_holes_per_slice(body)


def _field_of_view_inside_body(body: np.ndarray) -> bool:
    """True for a crop inside the patient: the body reaches both left and right edges in most slices."""
    touches = body[:, :, 0].any(axis=1) & body[:, :, -1].any(axis=1)
    return bool(touches.mean() > 0.5)


def _cropped_body(hu: np.ndarray) -> np.ndarray:
    """Body of a crop: everything except pure-air regions reaching the field-of-view edge.

    Lungs cut by the crop also reach the edge, but their parenchyma (vessels, partial
    volume) has a median well above the -1000 HU of air outside the patient.
    """
    air = hu < AIR_THRESHOLD_HU
    labels, n = ndimage.label(air)
    edge = np.zeros_like(air)
    edge[:, 0, :] = edge[:, -1, :] = edge[:, :, 0] = edge[:, :, -1] = True
    outside = np.zeros(n + 1, dtype=bool)
    for value in np.unique(labels[edge & air]):
        if np.median(hu[labels == value]) < OUTSIDE_AIR_MEDIAN_HU:
            outside[value] = True
    return ~outside[labels]


def find_trachea_seed(air: np.ndarray, body: np.ndarray, spacing: Sequence[float]) -> Optional[tuple[int, int, int]]:
    """A voxel inside the trachea, searched from the top of the scan downwards.

    The trachea is a small, roughly round air region near the left-right centre of the
    body, with no large air (lung) in the same slice above the apices, or the smallest
    central tube once the lungs appear.

    Returns:
        ``(z, y, x)`` or ``None`` when no trachea-like region exists (e.g. a crop below it).
    """
    pixel_area = spacing[0] * spacing[1]
    for z in range(air.shape[0] - 1, -1, -1):
        if body[z].sum() * pixel_area < 100 * 100:
            continue
        labels, n = ndimage.label(air[z])
        if n == 0:
            continue
        xs = np.nonzero(body[z].any(axis=0))[0]
        centre_x = (xs[0] + xs[-1]) / 2.0
        half_width = (xs[-1] - xs[0]) / 2.0
        for index, region in enumerate(ndimage.find_objects(labels), start=1):
            component = labels[region] == index
            area = component.sum() * pixel_area
            if not 50.0 <= area <= 700.0:  # trachea lumen: ~8-30 mm across
                continue
            cy, cx = ndimage.center_of_mass(component)
            cy += region[0].start
            cx += region[1].start
            if abs(cx - centre_x) > 0.25 * half_width:
                continue
            extent_y = (region[0].stop - region[0].start) * spacing[1]
            extent_x = (region[1].stop - region[1].start) * spacing[0]
            if max(extent_x, extent_y) > 3.0 * min(extent_x, extent_y) + 4.0:
                continue
            # Must continue downwards as a tube (not a skin fold or oesophageal bubble).
            below = max(0, z - int(round(20.0 / spacing[2])))
            column = air[below:z, int(cy), int(cx)]
            if column.size and column.mean() > 0.8:
                return z, int(round(cy)), int(round(cx))
    return None


def grow_airway(hu: np.ndarray, body: np.ndarray, seed: tuple[int, int, int], spacing: Sequence[float]) -> np.ndarray:
    """Trachea and main bronchi by region growing from ``seed`` with an adaptive threshold.

    The threshold starts at -980 HU and rises in steps while the grown volume stays
    plausible; a sudden jump (leak into the lung parenchyma) stops it.

    Returns:
        Boolean mask ``[z, y, x]``.
    """
    voxel_ml = float(np.prod(spacing)) / 1000.0
    previous = None
    for threshold in range(-980, -760, 20):
        candidate = (hu < threshold) & body
        labels, _ = ndimage.label(candidate)
        value = labels[seed]
        if value == 0:
            continue
        region = labels == value
        volume_ml = region.sum() * voxel_ml
        if previous is not None and (volume_ml > 1.6 * previous.sum() * voxel_ml + 5.0 or volume_ml > 250.0):
            break
        if volume_ml > 250.0:
            return np.zeros_like(body)
        previous = region
    if previous is None:
        return np.zeros_like(body)
    # The lumen grown at a strict threshold misses its partial-volume rim.
    return ndimage.binary_dilation(previous, iterations=1) & (hu < -300) & body


def _split_lungs(lungs: np.ndarray, spacing: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """Split a lung mask into (left, right) by patient coordinates (canonical x = Left)."""
    labels, n = ndimage.label(lungs)
    sizes = np.bincount(labels.ravel())[1:] if n else np.array([])
    big = [i + 1 for i in np.argsort(sizes)[::-1][:2] if sizes[i] > 0.15 * sizes.max()]
    if len(big) < 2 and lungs.any():
        # Touching lungs: erode until two large parts appear, then grow them back.
        eroded = lungs.copy()
        for _ in range(12):
            eroded = ndimage.binary_erosion(eroded, structure=_ball([1.0, 1.0, 1.0]))
            sub, m = ndimage.label(eroded)
            if m >= 2:
                s = np.bincount(sub.ravel())[1:]
                top = np.argsort(s)[::-1][:2]
                if s[top[1]] > 0.15 * s[top[0]]:
                    seeds = np.where(np.isin(sub, top + 1), sub, 0)
                    _, nearest = ndimage.distance_transform_edt(seeds == 0, sampling=spacing[::-1], return_indices=True)
                    grown = seeds[tuple(nearest)] * lungs
                    labels, big = grown, [int(top[0] + 1), int(top[1] + 1)]
                    break
    parts = [labels == value for value in big]
    if not parts:
        return np.zeros_like(lungs), np.zeros_like(lungs)
    if len(parts) == 1:
        # One lung only (a crop or a lung base): assign it by its side of the body.
        x_centre = np.nonzero(parts[0])[2].mean()
        side_left = x_centre > lungs.shape[2] / 2.0
        return (parts[0], np.zeros_like(lungs)) if side_left else (np.zeros_like(lungs), parts[0])
    x_means = [np.nonzero(p)[2].mean() for p in parts]
    left, right = (parts[0], parts[1]) if x_means[0] > x_means[1] else (parts[1], parts[0])
    return left, right


def _fill_lung(mask: np.ndarray, spacing: Sequence[float], radius_mm: float) -> np.ndarray:
    """Close and fill one lung so vessels, nodules and juxta-pleural masses belong to it."""
    if not mask.any():
        return mask
    pad = int(np.ceil(radius_mm / min(spacing))) + 1
    padded = np.pad(mask, pad)
    radius = [radius_mm / spacing[2], radius_mm / spacing[1], radius_mm / spacing[0]]
    closed = ndimage.binary_closing(padded, structure=_ball(radius))[pad:-pad, pad:-pad, pad:-pad]
    closed = _fill_holes_per_slice(closed | mask)
    return ndimage.binary_fill_holes(closed)


def lung_pseudo_labels(
    hu: np.ndarray,
    spacing: Sequence[float],
    air_threshold: float = AIR_THRESHOLD_HU,
    closing_mm: float = 6.0,
) -> LungLabels:
    """Classical lung, airway and body masks for a canonical CT array.

    Args:
        hu: CT ``[z, y, x]`` in HU, canonical LPS orientation.
        spacing: voxel size (x, y, z) mm.
        air_threshold: voxels below this (HU) inside the body count as air.
        closing_mm: closing radius that pulls vessels and pleural nodules into the lung.

    Returns:
        :class:`LungLabels`; lungs exclude the trachea and main bronchi.
    """
    spacing = tuple(float(s) for s in spacing)
    voxel_ml = float(np.prod(spacing)) / 1000.0
    body = body_mask(hu, spacing)
    air = (hu < air_threshold) & body
    seed = find_trachea_seed(air, body, spacing)
    airway = grow_airway(hu, body, seed, spacing) if seed is not None else np.zeros_like(body)
    lungs = air & ~ndimage.binary_dilation(airway, iterations=1)
    lungs = ndimage.binary_opening(lungs, structure=_ball([1.0, 1.0, 1.0]))
    lungs = _largest_components(lungs, 2, min_voxels=int(20.0 / voxel_ml))  # >= 20 ml
    left, right = _split_lungs(lungs, spacing)
    left = _fill_lung(left, spacing, closing_mm) & body
    right = _fill_lung(right, spacing, closing_mm) & body & ~left
    airway &= ~(left | right)
    return LungLabels(body=body, airway=airway, left_lung=left, right_lung=right)


def solid_lung_masses(
    hu: np.ndarray,
    lung: np.ndarray,
    spacing: Sequence[float],
    min_diameter_mm: float = 10.0,
    opening_mm: float = 5.0,
) -> np.ndarray:
    """Round soft-tissue masses inside the lung (e.g. a real tumour), as a nodule label.

    Soft tissue (> -300 HU) inside the lung is opened with a ball of ``opening_mm`` so
    that vessels (thinner than the ball) vanish and only compact blobs remain; those of
    equivalent diameter ``>= min_diameter_mm`` are grown back within the tissue by the
    opening radius. Blobs touching the mediastinum (hilum) are left out.

    Returns:
        Boolean mask ``[z, y, x]`` (empty when no mass is found).
    """
    spacing = tuple(float(s) for s in spacing)
    radius = [opening_mm / spacing[2], opening_mm / spacing[1], opening_mm / spacing[0]]
    inner = ndimage.binary_erosion(lung, structure=_ball([1.0, 1.0, 1.0]), iterations=2)
    tissue = (hu > -300) & inner
    cores = ndimage.binary_opening(tissue, structure=_ball(radius))
    labels, n = ndimage.label(cores)
    voxel_mm3 = float(np.prod(spacing))
    out = np.zeros_like(lung)
    for value in range(1, n + 1):
        core = labels == value
        diameter = (6.0 * core.sum() * voxel_mm3 / np.pi) ** (1.0 / 3.0)
        if diameter < min_diameter_mm:
            continue
        grown = ndimage.binary_dilation(core, structure=_ball(radius)) & tissue
        grown = _largest_components(grown, 1)
        if (ndimage.binary_dilation(grown, iterations=2) & ~lung).any():
            continue  # reaches the lung border: hilum or chest wall, not an isolated mass
        out |= grown
    return out
