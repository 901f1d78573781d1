"""The patient's body in a chest CT, including crops whose field of view lies inside it."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage

from .morphology import ball, fill_holes_per_slice, largest_components

AIR_THRESHOLD_HU = -450.0
BODY_THRESHOLD_HU = -500.0
OUTSIDE_AIR_MEDIAN_HU = -975.0


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
    tissue = ndimage.binary_opening(tissue, structure=ball(radius))
    body = largest_components(tissue, 1)
    if _field_of_view_inside_body(body):
        return _cropped_body(hu)
    return fill_holes_per_slice(body)


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
