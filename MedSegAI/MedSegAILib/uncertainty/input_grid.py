"""Uncertainty maps onto the input grid: all maps at once, only where they can be non-zero.

The maps are zero outside the sampled box on the model grid (see :mod:`.mc_dropout`), so
linear interpolation gives zero on every input voxel that is not within one model voxel
of the box. Only the box plus one voxel of its zero surroundings is resampled, onto the
block of input voxels it covers; the rest of each input-grid map is zero. The result
equals resampling each whole map with :meth:`SegmentationResult.to_input_grid` (ITK's
linear interpolation: zero outside the grid, the edge value within half a voxel of it).

When the input grid has the model grid's axes (identity direction, as for most axial
scans), linear interpolation is separable and runs as three one-axis interpolations;
otherwise the block is resampled by SimpleITK as one multi-component image.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk

from ..inference.engine import SegmentationResult
from ..io.volume import Volume


@dataclass
class InputGridMaps:
    """Maps on the input grid, stored as the block of it where they can be non-zero.

    Attributes:
        shape: the input grid ``[k, j, i]``.
        region: the block's ``[k, j, i]`` slices on the input grid.
        blocks: ``(maps, k, j, i)`` float32 values inside ``region`` (zero everywhere else).
    """

    shape: tuple[int, int, int]
    region: tuple[slice, slice, slice]
    blocks: np.ndarray

    def full(self, index: int) -> np.ndarray:
        """Map ``index`` as a whole input-grid array."""
        values = np.zeros(self.shape, dtype=np.float32)
        values[self.region] = self.blocks[index]
        return values


def maps_on_input_grid(
    result: SegmentationResult, maps: Sequence[np.ndarray], box: tuple[slice, slice, slice]
) -> InputGridMaps:
    """``maps`` (float32 ``[k, j, i]`` on the model grid, zero outside ``box``) on the input grid.

    Args:
        result: the segmentation whose model grid the maps are on.
        maps: the maps (at least one).
        box: the ``[k, j, i]`` model-grid box outside which every map is zero.

    Returns:
        The maps on the input grid, linearly interpolated.
    """
    target, model = result.labels, result.model_grid
    crop_box = tuple(slice(max(0, s.start - 1), min(n, s.stop + 1)) for s, n in zip(box, model.array.shape))
    crop = np.stack([np.asarray(values[crop_box], dtype=np.float32) for values in maps])  # (maps, k, j, i)
    corner = np.array([crop_box[2].start, crop_box[1].start, crop_box[0].start], dtype=float)
    source = Volume(crop[0], model.spacing, tuple(model.ijk_to_lps(corner)), model.direction)
    resample = _separable if np.allclose(target.direction, model.direction, atol=1e-6) else _with_sitk
    region, blocks = resample(crop, source, target)
    if blocks is None:  # the box covers no input voxel
        region, blocks = (slice(0, 0),) * 3, np.zeros((len(maps), 0, 0, 0), dtype=np.float32)
    return InputGridMaps(target.array.shape, region, blocks)


def _separable(
    crop: np.ndarray, source: Volume, target: Volume
) -> tuple[tuple[slice, slice, slice], np.ndarray | None]:
    """Linear interpolation one axis at a time (same axes on both grids), the axes that grow least first."""
    # Continuous source index of target voxel n along each axis: offset + n * scale.
    offset = np.linalg.solve(
        source.direction @ np.diag(source.spacing), np.asarray(target.origin) - np.asarray(source.origin)
    )
    scale = np.asarray(target.spacing) / np.asarray(source.spacing)
    plans = []
    for axis_ijk, dim in ((0, 3), (1, 2), (2, 1)):
        size_in = crop.shape[dim]
        position = offset[axis_ijk] + scale[axis_ijk] * np.arange(target.shape_ijk[axis_ijk])
        inside = np.flatnonzero((position >= -0.5) & (position <= size_in - 0.5))
        if inside.size == 0:
            return (slice(0, 0),) * 3, None
        rows = slice(int(inside[0]), int(inside[-1]) + 1)
        low = np.floor(position[rows])
        weight = (position[rows] - low).astype(np.float32).reshape([-1 if d == dim else 1 for d in range(4)])
        plans.append(
            (
                (rows.stop - rows.start) / size_in,
                dim,
                rows,
                np.clip(low, 0, size_in - 1).astype(np.intp),
                np.clip(low + 1, 0, size_in - 1).astype(np.intp),
                weight,
            )
        )
    plans.sort(key=lambda plan: plan[0])
    values = crop
    for _, dim, _, first, second, weight in plans:
        if not weight.any() and np.array_equal(first, np.arange(first[0], first[0] + first.size)):
            values = values[
                (slice(None),) * dim + (slice(int(first[0]), int(first[0]) + first.size),)
            ]  # a view
            continue
        lower = np.take(values, first, axis=dim)  # numpy gathers several times faster than torch here
        if weight.any():
            upper = np.take(values, second, axis=dim)
            upper -= lower
            upper *= weight
            lower += upper
        values = lower
    region = {dim: rows for _, dim, rows, _, _, _ in plans}
    return (region[1], region[2], region[3]), np.ascontiguousarray(values)


def _with_sitk(
    crop: np.ndarray, source: Volume, target: Volume
) -> tuple[tuple[slice, slice, slice], np.ndarray | None]:
    """SimpleITK's linear resampling of the crop onto the block of target voxels it covers."""
    image = sitk.GetImageFromArray(np.moveaxis(crop, 0, -1), isVector=True)
    image.SetSpacing(source.spacing)
    image.SetOrigin(source.origin)
    image.SetDirection(tuple(source.direction.flatten()))
    size = np.array(source.shape_ijk, dtype=float)
    corners = np.array(
        [
            [a, b, c]
            for a in (-0.5, size[0] - 0.5)
            for b in (-0.5, size[1] - 0.5)
            for c in (-0.5, size[2] - 0.5)
        ]
    )
    covered = target.lps_to_ijk(source.ijk_to_lps(corners))
    last = np.array(target.shape_ijk) - 1
    if np.any(covered.max(axis=0) < 0) or np.any(covered.min(axis=0) > last):
        return (slice(0, 0),) * 3, None
    low = np.clip(np.floor(covered.min(axis=0)).astype(int), 0, last)
    high = np.clip(np.ceil(covered.max(axis=0)).astype(int), 0, last)
    resampler = sitk.ResampleImageFilter()
    resampler.SetSize([int(s) for s in high - low + 1])
    resampler.SetOutputSpacing(target.spacing)
    resampler.SetOutputOrigin(tuple(target.ijk_to_lps(low.astype(float))))
    resampler.SetOutputDirection(tuple(target.direction.flatten()))
    resampler.SetInterpolator(sitk.sitkLinear)
    resampler.SetDefaultPixelValue(0.0)
    resampler.SetOutputPixelType(image.GetPixelID())
    resampled = sitk.GetArrayFromImage(resampler.Execute(image))
    block = resampled.reshape(resampled.shape[:3] + (crop.shape[0],))  # (k, j, i, maps), also for one map
    region = (slice(low[2], high[2] + 1), slice(low[1], high[1] + 1), slice(low[0], high[0] + 1))
    return region, np.ascontiguousarray(np.moveaxis(block, -1, 0))
