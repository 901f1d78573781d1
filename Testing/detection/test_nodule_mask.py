"""Outlining one nodule by half-maximum region growing from its candidate centre."""

from __future__ import annotations

import numpy as np
import pytest
from MedSegAILib.detection.measure import measure_component
from MedSegAILib.detection.nodule_mask import nodule_mask

from .synthetic import ellipsoid_mask, grid


def lung_beside_a_wall(nodule: bool):
    """Lung (-850 HU) beside a chest wall (+40 HU from x = 50 mm), with or without a 10 mm nodule
    on the wall; the lung mask leaves the nodule out, as a segmentation network does."""
    image = grid((50, 70, 70), (1.0, 1.0, 1.0), fill=-850.0)
    image.array[:, :, 50:] = 40.0
    center = np.asarray(image.ijk_to_lps([47.0, 35.0, 25.0]))
    if nodule:
        image.array[ellipsoid_mask(image, center, (5.0, 5.0, 5.0))] = 40.0
    lungs = image.with_array((image.array < -500).astype(np.uint8))
    return image, lungs, center


def test_a_nodule_in_a_dent_of_the_lung_mask_is_outlined_without_the_wall():
    image, lungs, center = lung_beside_a_wall(nodule=True)
    grown = nodule_mask(image, center, 5.0, lungs)
    assert grown is not None, "a juxta-pleural nodule left out of the lung mask was dropped"
    slices, mask, _ = grown
    measured = measure_component(mask, image.crop(slices))
    assert np.linalg.norm(np.subtract(measured.center, center)) <= 2.0
    assert measured.long_axis_mm == pytest.approx(10.0, abs=2.0)
    assert measured.volume_mm3 <= 1.2 * 4 / 3 * np.pi * 125  # the wall behind it is not part of it


def test_a_candidate_on_a_flat_wall_is_dropped():
    image, lungs, center = lung_beside_a_wall(nodule=False)
    assert nodule_mask(image, center + [3.0, 0.0, 0.0], 5.0, lungs) is None
