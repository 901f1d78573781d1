"""The mask of one nodule on the input grid, grown from a candidate centre.

Half-maximum region growing, as semi-automatic nodule volumetry tools do: the threshold is
halfway between the nodule's density and the surrounding lung's (median of the lung-dark
voxels nearby), so a ground-glass nodule is outlined at its own contrast and a solid one at
its own. The nodule's density is the lower of its core (median HU within 0.4 radius of the
centre) and its outer shell (0.5 to 0.8 radius), so a part-solid nodule is outlined at its
ground-glass rim rather than around its solid core. The component that holds
the centre is kept, limited to the search region (the filled lungs, so a juxta-pleural
nodule does not leak into the chest wall) and to a ball of a few radii; a morphological
opening then cuts the vessels that touch it. When the candidate's core lies outside the
filled lungs (a juxta-pleural nodule in a dent that their cheap polyhedral closing left
open), the region is closed again around it with a Euclidean ball; a candidate on a flat
wall gains nothing from that and is dropped.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from ..inference.resample import resample_like
from ..io.volume import Volume

MIN_CONTRAST_HU = 100.0
CLOSING_RADIUS_MM = 10.0
DEFAULT_LUNG_HU = -850.0
LUNG_DARK_HU = -600.0


class GrownNodule(NamedTuple):
    """A grown outline: the input-grid box as ``[k, j, i]`` slices, the boolean mask in it, and
    the half-maximum level (HU) that set its edge."""

    slices: tuple[slice, slice, slice]
    mask: np.ndarray
    edge_hu: float


def nodule_mask(
    image: Volume, center_lps: np.ndarray, radius_mm: float, region: Volume
) -> GrownNodule | None:
    """Grow the nodule around ``center_lps``.

    Args:
        image: the CT in HU (input grid, any orientation).
        center_lps: the candidate centre (LPS mm).
        radius_mm: the candidate's estimated radius.
        region: where the nodule may lie (uint8 map on any grid, e.g. the filled lungs on the model grid).

    Returns:
        The outline, or ``None`` when the centre is not denser than the lung around it.
    """
    reach = max(1.6 * radius_mm + 6.0, 10.0)
    slices = _box(image, np.asarray(center_lps, dtype=float), reach)
    if slices is None:
        return None
    crop = image.crop(slices)
    allowed = sitk.GetArrayFromImage(resample_like(region.to_sitk(), crop, sitk.sitkNearestNeighbor, 0)) > 0
    kji = np.stack(np.meshgrid(*[np.arange(n) for n in crop.array.shape], indexing="ij"), axis=-1)
    distance = np.linalg.norm(crop.ijk_to_lps(kji[..., ::-1].reshape(-1, 3)) - center_lps, axis=1).reshape(
        crop.array.shape
    )
    hu = crop.array
    core = distance <= max(0.4 * radius_mm, 1.5 * float(np.max(image.spacing)) / 2.0 + 0.5)
    if not core.any():
        core = distance <= distance.min()
    if not allowed[core].any():
        # A juxta-pleural nodule in a dent of the lungs that the search region's cheap closing left open.
        allowed = _closed(allowed, crop.spacing, CLOSING_RADIUS_MM)
    core_hu = float(np.median(hu[core]))
    shell = (distance >= 0.5 * radius_mm) & (distance <= 0.8 * radius_mm)
    # A part-solid nodule: the outer ground glass, not the solid core, sets its edge.
    level = min(core_hu, float(np.median(hu[shell]))) if shell.sum() >= 8 else core_hu
    lung_dark = allowed & (hu < LUNG_DARK_HU)
    lung_hu = float(np.median(hu[lung_dark])) if lung_dark.sum() >= 20 else DEFAULT_LUNG_HU
    if level - lung_hu < MIN_CONTRAST_HU:
        level = core_hu
    if level - lung_hu < MIN_CONTRAST_HU:
        return None
    edge_hu = (level + lung_hu) / 2.0
    mask = (hu >= edge_hu) & allowed & (distance <= max(2.0 * radius_mm, radius_mm + 6.0))
    mask = _component_at(mask, core)
    if mask is None:
        return None
    opened = _component_at(
        ndimage.binary_opening(mask, _ball(image.spacing, min(0.3 * radius_mm, 2.5))), core
    )
    return GrownNodule(slices, opened if opened is not None else mask, edge_hu)


def _closed(mask: np.ndarray, spacing: tuple[float, float, float], radius_mm: float) -> np.ndarray:
    """Binary closing of ``mask`` with a Euclidean ball of ``radius_mm`` on voxels of ``spacing`` (x, y, z);
    the crop's edges are extended outwards so that they do not erode it."""
    pad = [int(np.ceil(radius_mm / s)) + 1 for s in spacing[::-1]]
    padded = np.pad(mask, [(p, p) for p in pad], mode="edge")
    dilated = ndimage.distance_transform_edt(~padded, sampling=spacing[::-1]) <= radius_mm
    closed = ndimage.distance_transform_edt(dilated, sampling=spacing[::-1]) > radius_mm
    return closed[tuple(slice(p, -p) for p in pad)] | mask


def _component_at(mask: np.ndarray, core: np.ndarray) -> np.ndarray | None:
    """The 26-connected component of ``mask`` that overlaps ``core`` most, or None."""
    labels, count = ndimage.label(mask, structure=np.ones((3, 3, 3), dtype=bool))
    if count == 0:
        return None
    overlap = np.bincount(labels[core], minlength=count + 1)[1:]
    if overlap.max() == 0:
        return None
    return labels == (int(np.argmax(overlap)) + 1)


def _ball(spacing: tuple[float, float, float], radius_mm: float) -> np.ndarray:
    """A ball structuring element of ``radius_mm`` on voxels of ``spacing`` (x, y, z)."""
    half = [max(0, int(radius_mm / s)) for s in spacing[::-1]]
    grid = np.meshgrid(*[np.arange(-h, h + 1) * s for h, s in zip(half, spacing[::-1])], indexing="ij")
    return sum(g**2 for g in grid) <= radius_mm**2 + 1e-6


def _box(image: Volume, center: np.ndarray, reach_mm: float) -> tuple[slice, slice, slice] | None:
    """Input-grid ``[k, j, i]`` slices covering a cube of half-size ``reach_mm`` around ``center``."""
    corners = center + reach_mm * np.array([[a, b, c] for a in (-1, 1) for b in (-1, 1) for c in (-1, 1)])
    ijk = image.lps_to_ijk(corners)
    low = np.maximum(np.floor(ijk.min(axis=0)).astype(int), 0)
    high = np.minimum(np.ceil(ijk.max(axis=0)).astype(int) + 1, image.shape_ijk)
    if np.any(high <= low):
        return None
    return tuple(slice(int(lo), int(hi)) for lo, hi in zip(low[::-1], high[::-1]))  # type: ignore[return-value]
