"""Inserted nodules become reference nodules at the right LPS position and size."""

from __future__ import annotations

import numpy as np
from medsegai_lab.nodule_cases import insert_nodules
from MedSegAILib.io import Volume


def test_inserted_nodules_are_referenced_where_they_were_inserted():
    hu = np.full((40, 60, 60), -850.0, np.float32)
    volume = Volume(hu, (1.0, 1.0, 2.0), (-30.0, 10.0, -40.0))
    lung = np.ones(hu.shape, bool)
    case = insert_nodules("scan", volume, lung, count=3, seed=7, diameter_range=(6.0, 10.0))
    assert 1 <= len(case.nodules) <= 3
    assert not np.shares_memory(case.volume.array, volume.array) and (volume.array == -850).all()
    for nodule, measured in zip(case.nodules, case.measured_long_axis_mm):
        i, j, k = np.rint(volume.lps_to_ijk(nodule.center)).astype(int)
        assert case.volume.array[k, j, i] > -780  # denser than the lung at the referenced centre
        assert abs(measured - nodule.diameter_mm) < 3.0
