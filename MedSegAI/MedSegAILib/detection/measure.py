"""Measure one nodule (a binary component) the way radiologists do, in patient millimetres.

Pure numpy/scipy on a ``[k, j, i]`` mask plus a :class:`~MedSegAILib.io.Volume`'s geometry.

Definitions (docs/detection.md):

- ``center``: the geometric centroid of the component's voxel centres, in LPS mm.
- ``bbox``: the LPS axis-aligned box that encloses every voxel of the component
  (voxel extents included, so a single voxel has a box of its own size).
- ``volume_mm3``: voxel count times the voxel volume.
- ``long_axis_mm``: the longest diameter within one *axial* image slice. The slice axis is
  the grid axis closest to the patient's head-foot (z) axis, so for the usual axial
  acquisitions these are the slices a radiologist reads, oblique or not. The diameter
  between two voxels is the distance of their centres plus one voxel width along that line,
  so a digitised disk of diameter D measures D (not D minus a voxel).
- ``short_axis_mm``: on the same slice, the largest width perpendicular to the long axis.
- ``mean_diameter_mm``: the mean of long and short axis, as Lung-RADS v2022 uses it,
  rounded to 0.1 mm.
- ``kind``: ``"mass"`` when the long axis is over :data:`MASS_LONG_AXIS_MM` (30 mm), else
  ``"nodule"``.
- ``lung_rads``: the Lung-RADS v2022 size category of a *solid* nodule at baseline
  screening from the mean diameter: ``2`` (< 6 mm), ``3`` (6 to < 8 mm), ``4A`` (8 to < 15 mm),
  ``4B`` (>= 15 mm); ``None`` for a mass, since Lung-RADS stops at nodules. Solidity, growth and
  other features are not assessed here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import ndimage
from scipy.spatial import ConvexHull, QhullError

from ..io.volume import Volume

LUNG_RADS_VERSION = "Lung-RADS v2022, solid nodule, baseline screening"
# (upper bound of mean diameter in mm, category), checked in order.
LUNG_RADS_SOLID_BASELINE = ((6.0, "2"), (8.0, "3"), (15.0, "4A"), (float("inf"), "4B"))
MASS_LONG_AXIS_MM = 30.0
"""A lesion whose long axis is over this is a mass, not a nodule (Fleischner glossary)."""


@dataclass(frozen=True)
class NoduleMeasurement:
    """Size and position of one component, all in LPS millimetres."""

    center: tuple[float, float, float]
    bbox: tuple[tuple[float, float, float], tuple[float, float, float]]
    volume_mm3: float
    long_axis_mm: float
    short_axis_mm: float
    mean_diameter_mm: float
    lung_rads: str | None
    voxels: int

    @property
    def lesion_kind(self) -> str:
        """``"mass"`` over :data:`MASS_LONG_AXIS_MM`, else ``"nodule"``."""
        return "mass" if self.long_axis_mm > MASS_LONG_AXIS_MM else "nodule"

    def to_json(self) -> dict[str, Any]:
        """Fields for ``findings.json`` (``diameter_mm`` is the long axial diameter)."""
        return {
            "center": [round(c, 2) for c in self.center],
            "bbox": [[round(c, 2) for c in self.bbox[0]], [round(c, 2) for c in self.bbox[1]]],
            "diameter_mm": round(self.long_axis_mm, 2),
            "long_axis_mm": round(self.long_axis_mm, 2),
            "short_axis_mm": round(self.short_axis_mm, 2),
            "mean_diameter_mm": round(self.mean_diameter_mm, 1),
            "volume_mm3": round(self.volume_mm3, 1),
            "kind": self.lesion_kind,
            "lung_rads": self.lung_rads,
        }


def lung_rads_category(mean_diameter_mm: float) -> str:
    """Lung-RADS v2022 size category of a solid baseline nodule (``2``, ``3``, ``4A``, ``4B``).

    Args:
        mean_diameter_mm: mean of long and short axis; rounded to 0.1 mm first, as Lung-RADS says.
    """
    rounded = round(float(mean_diameter_mm), 1)
    for upper, category in LUNG_RADS_SOLID_BASELINE:
        if rounded < upper:
            return category
    return LUNG_RADS_SOLID_BASELINE[-1][1]


def measure_component(mask: np.ndarray, grid: Volume) -> NoduleMeasurement:
    """Measure the voxels set in ``mask`` (``[k, j, i]``, on ``grid``'s voxel grid).

    Args:
        mask: boolean array with the same shape as ``grid.array``; usually one connected component.
        grid: the volume whose geometry (spacing, origin, direction) the mask lives on.

    Returns:
        The measurement (see the module docstring for the definitions).

    Raises:
        ValueError: the mask is empty or its shape differs from the grid's.
    """
    mask = np.asarray(mask, dtype=bool)
    if mask.shape != grid.array.shape:
        raise ValueError(f"mask shape {mask.shape} does not match grid {grid.array.shape}")
    kji = np.argwhere(mask)
    if kji.size == 0:
        raise ValueError("cannot measure an empty component")
    ijk = kji[:, ::-1].astype(float)
    axes = grid.direction @ np.diag(grid.spacing)  # columns: i, j, k steps in LPS mm
    center = grid.ijk_to_lps(ijk.mean(axis=0))
    centres = grid.ijk_to_lps(ijk)
    half_extent = 0.5 * np.abs(axes).sum(axis=1)
    low, high = centres.min(axis=0) - half_extent, centres.max(axis=0) + half_extent
    volume = float(len(ijk) * abs(np.linalg.det(axes)))
    long_axis, short_axis = _axial_diameters(mask, axes)
    mean_diameter = round(0.5 * (long_axis + short_axis), 1)
    return NoduleMeasurement(
        center=tuple(float(c) for c in center),  # type: ignore[arg-type]
        bbox=(tuple(float(c) for c in low), tuple(float(c) for c in high)),  # type: ignore[arg-type]
        volume_mm3=volume,
        long_axis_mm=long_axis,
        short_axis_mm=short_axis,
        mean_diameter_mm=mean_diameter,
        lung_rads=None if long_axis > MASS_LONG_AXIS_MM else lung_rads_category(mean_diameter),
        voxels=int(len(ijk)),
    )


def axial_slice_axis(direction: np.ndarray) -> int:
    """The grid axis (0 = i, 1 = j, 2 = k) most aligned with patient z (head-foot)."""
    return int(np.argmax(np.abs(np.asarray(direction, dtype=float)[2, :])))


def _axial_diameters(mask: np.ndarray, axes: np.ndarray) -> tuple[float, float]:
    """(long, short) axis in mm on the axial slice where the long axis is largest."""
    slice_axis = axial_slice_axis(axes / np.linalg.norm(axes, axis=0))
    array_axis = 2 - slice_axis  # mask is [k, j, i]: array axis a is grid axis 2 - a
    # np.take keeps the other array axes in ascending order; these are their grid axes.
    plane_steps = axes[:, [2 - a for a in range(3) if a != array_axis]]  # 3x2, LPS mm per pixel
    best = (0.0, 0.0)
    occupied = mask.any(axis=tuple(a for a in range(3) if a != array_axis))
    for index in np.flatnonzero(occupied):
        plane = np.take(mask, index, axis=array_axis)
        rc = np.argwhere(plane & ~ndimage.binary_erosion(plane)).astype(float)  # boundary pixels
        long_axis, short_axis = _diameters_2d(rc, plane_steps)
        if long_axis > best[0]:
            best = (long_axis, short_axis)
    return best


def _diameters_2d(rc: np.ndarray, steps: np.ndarray) -> tuple[float, float]:
    """Longest diameter and perpendicular width (mm) of pixels at 2-D indices ``rc``.

    ``steps`` (3 x 2) are the LPS edge vectors of a pixel along the two index columns; the
    pixel's width along a direction is added to the centre-to-centre distance.
    """
    rc = _hull_points(rc)
    points = rc @ steps.T
    if len(points) == 1:
        return float(np.linalg.norm(steps[:, 0])), float(np.linalg.norm(steps[:, 1]))
    differences = points[:, None, :] - points[None, :, :]
    distances = np.linalg.norm(differences, axis=2)
    a, b = np.unravel_index(np.argmax(distances), distances.shape)
    direction = differences[a, b] / distances[a, b]
    long_axis = distances[a, b] + _pixel_width(steps, direction)
    normal = np.cross(steps[:, 0], steps[:, 1])
    perpendicular = np.cross(normal, direction)
    perpendicular /= np.linalg.norm(perpendicular)
    projection = points @ perpendicular
    short_axis = float(projection.max() - projection.min()) + _pixel_width(steps, perpendicular)
    return float(long_axis), float(short_axis)


def _pixel_width(steps: np.ndarray, direction: np.ndarray) -> float:
    """Width of one pixel (edges ``steps``) measured along unit ``direction``."""
    return float(np.abs(direction @ steps).sum())


def _hull_points(rc: np.ndarray) -> np.ndarray:
    """Reduce 2-D pixel indices to their convex hull vertices (all of them if collinear)."""
    if len(rc) < 4:
        return rc
    try:
        return rc[ConvexHull(rc).vertices]
    except QhullError:  # collinear pixels
        return rc
