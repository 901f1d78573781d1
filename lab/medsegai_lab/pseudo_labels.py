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

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from MedSegAILib.anatomy.airway import find_trachea_seed, grow_airway
from MedSegAILib.anatomy.body import AIR_THRESHOLD_HU, body_mask
from MedSegAILib.anatomy.morphology import ball, fill_holes_per_slice, largest_components
from scipy import ndimage


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


def _split_lungs(lungs: np.ndarray, spacing: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """Split a lung mask into (left, right) by patient coordinates (canonical x = Left)."""
    labels, n = ndimage.label(lungs)
    sizes = np.bincount(labels.ravel())[1:] if n else np.array([])
    big = [i + 1 for i in np.argsort(sizes)[::-1][:2] if sizes[i] > 0.15 * sizes.max()]
    if len(big) < 2 and lungs.any():
        # Touching lungs: erode until two large parts appear, then grow them back.
        eroded = lungs.copy()
        for _ in range(12):
            eroded = ndimage.binary_erosion(eroded, structure=ball([1.0, 1.0, 1.0]))
            sub, m = ndimage.label(eroded)
            if m >= 2:
                s = np.bincount(sub.ravel())[1:]
                top = np.argsort(s)[::-1][:2]
                if s[top[1]] > 0.15 * s[top[0]]:
                    seeds = np.where(np.isin(sub, top + 1), sub, 0)
                    _, nearest = ndimage.distance_transform_edt(
                        seeds == 0, sampling=spacing[::-1], return_indices=True
                    )
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
    closed = ndimage.binary_closing(padded, structure=ball(radius))[pad:-pad, pad:-pad, pad:-pad]
    closed = fill_holes_per_slice(closed | mask)
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
    lungs = ndimage.binary_opening(lungs, structure=ball([1.0, 1.0, 1.0]))
    lungs = largest_components(lungs, 2, min_voxels=int(20.0 / voxel_ml))  # >= 20 ml
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
    inner = ndimage.binary_erosion(lung, structure=ball([1.0, 1.0, 1.0]), iterations=2)
    tissue = (hu > -300) & inner
    cores = ndimage.binary_opening(tissue, structure=ball(radius))
    labels, n = ndimage.label(cores)
    voxel_mm3 = float(np.prod(spacing))
    out = np.zeros_like(lung)
    for value in range(1, n + 1):
        core = labels == value
        diameter = (6.0 * core.sum() * voxel_mm3 / np.pi) ** (1.0 / 3.0)
        if diameter < min_diameter_mm:
            continue
        grown = ndimage.binary_dilation(core, structure=ball(radius)) & tissue
        grown = largest_components(grown, 1)
        if (ndimage.binary_dilation(grown, iterations=2) & ~lung).any():
            continue  # reaches the lung border: hilum or chest wall, not an isolated mass
        out |= grown
    return out
