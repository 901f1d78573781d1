"""Segmentation and detection from one network run (engine + detector, stand-in network)."""

from __future__ import annotations

import numpy as np
import pytest

from MedSegAILib.detection import pipeline
from MedSegAILib.detection.pipeline import detect_from_segmentation, segment_and_detect
from MedSegAILib.errors import InputError

from .fake_model import fake_model, synthetic_chest


@pytest.fixture(scope="module")
def chest():
    return synthetic_chest()


def test_segment_and_detect_runs_the_network_once_and_finds_the_nodule(chest, monkeypatch):
    volume, nodule_center, _ = chest
    calls = []
    original = pipeline.segment_volume
    monkeypatch.setattr(pipeline, "segment_volume", lambda *a, **k: calls.append(1) or original(*a, **k))
    segmentation, detection = segment_and_detect(volume, fake_model(), threads=1)
    assert len(calls) == 1
    assert segmentation.labels.array.shape == volume.array.shape
    assert "detect" in segmentation.timings
    assert len(detection.findings) == 1
    finding = detection.findings[0]
    assert np.linalg.norm(np.subtract(finding.measurement.center, nodule_center)) <= 1.0
    assert finding.measurement.long_axis_mm == pytest.approx(10.0, abs=1.5)
    assert detection.labels.shape == volume.array.shape


def test_candidates_outside_the_lungs_are_not_findings(chest):
    volume, _, mediastinum = chest
    segmentation, _ = segment_and_detect(volume, fake_model(), threads=1)
    # Make the network "see" a nodule in the mediastinum, between the lungs.
    nodule_index = segmentation.class_names.index("lung nodule")
    segmentation.probabilities[nodule_index][:] = 0
    i, j, k = np.rint(segmentation.model_grid.lps_to_ijk(mediastinum)).astype(int)
    segmentation.probabilities[nodule_index][k - 3:k + 4, j - 3:j + 4, i - 3:i + 4] = 0.9
    assert detect_from_segmentation(segmentation, volume).findings == []


def test_a_model_without_a_nodule_class_is_refused(chest):
    volume, _, _ = chest
    segmentation, _ = segment_and_detect(volume, fake_model(), threads=1)
    segmentation.class_names = ("background", "lung", "airway")
    with pytest.raises(InputError, match="lung nodule"):
        detect_from_segmentation(segmentation, volume)
