"""One lesion, one finding: candidates whose outlines touch or overlap are one object,
measured once on its whole outline, and no two findings share or touch voxels."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from .synthetic import ellipsoid_mask, grid
from .test_detector import detect


def _capsule_scan():
    """A 62 mm long, 12 mm wide solid lesion (+40 HU) in lung (-850 HU): several candidates."""
    image = grid((40, 50, 110), (1.0, 1.0, 1.0), fill=-850.0)
    for x in np.linspace(27.0, 77.0, 11):
        image.array[ellipsoid_mask(image, (x, 25.0, 20.0), (6.0, 6.0, 6.0))] = 40.0
    return image


def test_a_lesion_split_across_candidates_gives_one_finding():
    image = _capsule_scan()
    result = detect(image, threshold=0.3)
    assert result.candidates > 1, "the lesion must hold several candidates for this test to mean anything"
    assert len(result.findings) == 1
    finding = result.findings[0]
    # Measured once, on the whole outline: its long axis spans the whole lesion (62 mm).
    assert finding.measurement.long_axis_mm == pytest.approx(62.0, abs=3.0)
    truth = image.array > 0
    assert (result.labels == 1).sum() == pytest.approx(truth.sum(), rel=0.2)


def test_a_lobulated_lesion_gives_one_finding_over_all_its_lobes():
    image = grid((40, 50, 110), (1.0, 1.0, 1.0), fill=-850.0)
    for center, radius in (((40.0, 25.0, 20.0), 8.0), ((53.0, 25.0, 20.0), 5.0), ((29.0, 27.0, 18.0), 6.0)):
        image.array[ellipsoid_mask(image, center, (radius, radius, radius))] = 40.0
    result = detect(image, threshold=0.3)
    assert len(result.findings) == 1
    truth = image.array > 0
    assert np.count_nonzero(truth & (result.labels == 1)) >= 0.9 * truth.sum()


def test_separate_nodules_stay_separate_findings_that_do_not_touch():
    image = grid((40, 50, 110), (1.0, 1.0, 1.0), fill=-850.0)
    for x in (30.0, 55.0, 80.0):
        image.array[ellipsoid_mask(image, (x, 25.0, 20.0), (5.0, 5.0, 5.0))] = 40.0
    result = detect(image, threshold=0.3)
    assert len(result.findings) == 3
    for finding in result.findings:
        own = result.labels == finding.id
        around = ndimage.binary_dilation(own, np.ones((3, 3, 3), bool)) & ~own
        assert not np.any(result.labels[around]), f"finding {finding.id} touches another finding"
