"""Canonical orientation and resampling, shared by training and inference.

The model sees volumes in canonical LPS orientation (identity direction: array axes
``[k, j, i]`` run towards Superior, Posterior, Left) at the card's spacing.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import SimpleITK as sitk

from ..io.volume import Volume


def to_canonical(image: sitk.Image) -> sitk.Image:
    """Permute/flip axes so the direction is the identity (nearest axis-aligned for oblique).

    This is lossless (no interpolation); oblique scans keep their residual rotation,
    which the later resampling removes.
    """
    return sitk.DICOMOrient(image, "LPS")


def resample_to_spacing(
    image: sitk.Image,
    spacing: Sequence[float],
    interpolator: int = sitk.sitkLinear,
    default_value: float = -1024.0,
) -> sitk.Image:
    """Resample ``image`` onto an axis-aligned grid with ``spacing`` (x, y, z) mm covering it.

    The output grid has identity direction and starts at the input's first voxel centre
    in canonical space, so an oblique input is resampled into LPS-aligned axes.
    """
    spacing = tuple(float(s) for s in spacing)
    size_in = np.array(image.GetSize())
    corners = np.array(
        [[i, j, k] for i in (0, size_in[0] - 1) for j in (0, size_in[1] - 1) for k in (0, size_in[2] - 1)]
    )
    points = np.array(
        [image.TransformContinuousIndexToPhysicalPoint(c.astype(float).tolist()) for c in corners]
    )
    low, high = points.min(axis=0), points.max(axis=0)
    size = np.maximum(1, np.floor((high - low) / np.array(spacing) + 1e-3).astype(int) + 1)
    return sitk.Resample(
        image,
        [int(s) for s in size],
        sitk.Transform(),
        interpolator,
        low.tolist(),
        spacing,
        np.eye(3).flatten().tolist(),
        default_value,
        image.GetPixelID(),
    )


def resample_like(
    image: sitk.Image,
    reference: Volume | sitk.Image,
    interpolator: int = sitk.sitkNearestNeighbor,
    default_value: float = 0.0,
) -> sitk.Image:
    """Resample ``image`` onto ``reference``'s exact grid (size, spacing, origin, direction).

    A :class:`Volume` reference contributes only its geometry: its array is not copied,
    so mapping a small model-grid map onto a large input grid stays cheap in memory.
    """
    if isinstance(reference, sitk.Image):
        return sitk.Resample(
            image, reference, sitk.Transform(), interpolator, default_value, image.GetPixelID()
        )
    resampler = sitk.ResampleImageFilter()
    resampler.SetSize([int(s) for s in reference.shape_ijk])
    resampler.SetOutputSpacing(reference.spacing)
    resampler.SetOutputOrigin(reference.origin)
    resampler.SetOutputDirection(tuple(reference.direction.flatten()))
    resampler.SetInterpolator(interpolator)
    resampler.SetDefaultPixelValue(default_value)
    resampler.SetOutputPixelType(image.GetPixelID())
    return resampler.Execute(image)
