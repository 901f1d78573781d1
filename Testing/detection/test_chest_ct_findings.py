"""The real chest CT series: the right-lung mass is the top finding, with at most 2 others.

The acceptance case of the detection issue, with the shipped segmentation model and nodule
classifier at the default threshold (lab/experiments/detect_chest_ct.py prints and draws it).
A large mass draws several candidates; it must still be one finding.
"""

from __future__ import annotations

import numpy as np
import pytest
from MedSegAILib.detection.pipeline import segment_and_detect
from MedSegAILib.errors import InputError
from MedSegAILib.io import read_volume
from MedSegAILib.models.registry import load_model, resolve_model

pytestmark = [pytest.mark.shared_data]


def test_the_right_lung_mass_is_the_top_finding_with_at_most_two_others(shared_data):
    volume = read_volume(shared_data("chest_ct_dicom"))
    try:
        model = load_model(resolve_model(None), "cpu")
    except InputError:
        pytest.skip("needs the shipped chest_ct model")
    _, detection = segment_and_detect(volume, model)
    findings = detection.findings
    assert 1 <= len(findings) <= 3, f"{len(findings)} findings"
    top = findings[0].measurement
    midline_x = float(np.mean(volume.ijk_to_lps([[0, 0, 0], [volume.shape_ijk[0] - 1, 0, 0]])[:, 0]))
    assert top.center[0] < midline_x, "the top finding is not in the patient's right lung"
    assert top.long_axis_mm >= 25.0, f"the top finding is {top.long_axis_mm:.1f} mm, not the mass"
    others_on_the_mass = [
        f for f in findings[1:] if np.linalg.norm(np.subtract(f.measurement.center, top.center)) < 20.0
    ]
    assert not others_on_the_mass, "the mass is reported more than once"
