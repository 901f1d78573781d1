"""Where a nodule may lie: the lungs with holes and pleural notches filled, and nothing else.

Masks on a 2 mm isotropic grid (the model grid), closing radius 10 mm.
"""

from __future__ import annotations

import numpy as np
from MedSegAILib.detection.candidates import CLOSING_RADIUS_MM, filled_lungs

SPACING = 2.0


def ball(shape, center, radius_vox) -> np.ndarray:
    k, j, i = np.indices(shape)
    return (k - center[0]) ** 2 + (j - center[1]) ** 2 + (i - center[2]) ** 2 <= radius_vox**2


def lung_block(shape=(50, 60, 60)) -> np.ndarray:
    """A box of lung with 10 voxels of chest wall around it."""
    lung = np.zeros(shape, dtype=bool)
    lung[10:-10, 10:-10, 10:-10] = True
    return lung


def test_a_nodule_inside_the_lung_is_filled():
    lung = lung_block()
    lung &= ~ball(lung.shape, (25, 30, 30), 6)
    filled = filled_lungs(lung, SPACING)
    assert filled[ball(lung.shape, (25, 30, 30), 6)].all()


def test_a_juxta_pleural_nodule_is_filled():
    lung = lung_block()
    notch = ball(lung.shape, (25, 30, 13), 4) & lung  # an 8 mm-radius nodule resting on the chest wall
    lung &= ~notch
    filled = filled_lungs(lung, SPACING)
    assert (
        filled[notch].mean() >= 0.85
    )  # an exact Euclidean closing fills 92 %: the wall side of the nodule stays open


def test_a_convex_lung_gains_nothing():
    lung = ball((60, 60, 60), (30, 30, 30), 20)
    assert np.array_equal(filled_lungs(lung, SPACING), lung)


def test_lungs_farther_apart_than_the_closing_diameter_stay_apart():
    gap_voxels = int(2 * CLOSING_RADIUS_MM / SPACING) + 4  # a mediastinum wider than the closing ball
    lung = np.zeros((40, 40, 40 + 2 * 12 + gap_voxels), dtype=bool)
    lung[8:-8, 8:-8, 6:18] = True
    lung[8:-8, 8:-8, 18 + gap_voxels : 30 + gap_voxels] = True
    filled = filled_lungs(lung, SPACING)
    assert not filled[:, :, 18 : 18 + gap_voxels].any()


def test_no_lung_gives_no_region():
    assert not filled_lungs(np.zeros((10, 10, 10), dtype=bool), SPACING).any()
