"""Trachea and main bronchi: a seed found in the upper slices, then adaptive region growing."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage


def find_trachea_seed(
    air: np.ndarray, body: np.ndarray, spacing: Sequence[float]
) -> tuple[int, int, int] | None:
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


def grow_airway(
    hu: np.ndarray, body: np.ndarray, seed: tuple[int, int, int], spacing: Sequence[float]
) -> np.ndarray:
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
