"""Load volumes into the model's canonical LPS grid, exactly as the inference engine does."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import SimpleITK as sitk

from ..inference.resample import resample_to_spacing, to_canonical
from ..io import read_volume


def canonical_image(
    path: str | os.PathLike, spacing: Sequence[float] | None = None, label: bool = False
) -> sitk.Image:
    """Read ``path`` (file or DICOM series), orient it to LPS and optionally resample.

    Args:
        path: a CT (file or DICOM series) or a label-map file.
        spacing: target spacing (x, y, z) mm, or ``None`` to keep the native spacing.
        label: nearest-neighbour resampling and 0 padding (labels) instead of linear / -1024.

    Returns:
        A SimpleITK image with identity direction.
    """
    if label:
        image = to_canonical(sitk.Cast(sitk.ReadImage(str(path)), sitk.sitkInt16))
    else:
        image = to_canonical(read_volume(path).to_sitk())
    if spacing is None:
        return image
    if label:
        return resample_to_spacing(image, spacing, sitk.sitkNearestNeighbor, 0.0)
    return resample_to_spacing(image, spacing, sitk.sitkLinear, -1024.0)


def image_array(image: sitk.Image) -> np.ndarray:
    """The ``[z, y, x]`` float32 array of an image."""
    return sitk.GetArrayFromImage(image).astype(np.float32)


def resample_onto(image: sitk.Image, reference: sitk.Image, label: bool) -> sitk.Image:
    """Resample ``image`` onto ``reference``'s grid (nearest for labels, linear for CT)."""
    interpolator = sitk.sitkNearestNeighbor if label else sitk.sitkLinear
    return sitk.Resample(
        image, reference, sitk.Transform(), interpolator, 0.0 if label else -1024.0, image.GetPixelID()
    )
