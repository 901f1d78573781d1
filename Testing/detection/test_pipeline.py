"""Segmentation and detection from one network run (engine + detector, stand-in network)."""

from __future__ import annotations

import numpy as np
import pytest
from MedSegAILib.detection import pipeline
from MedSegAILib.detection.pipeline import detect_from_segmentation, segment_and_detect
from MedSegAILib.errors import InputError

from .fake_model import fake_model, synthetic_chest
from .test_detector import CentreDensityScorer


@pytest.fixture(scope="module")
def chest():
    return synthetic_chest()


def test_segment_and_detect_runs_the_network_once_and_finds_the_nodule(chest, monkeypatch):
    volume, nodule_center, _ = chest
    calls = []
    original = pipeline.segment_volume
    monkeypatch.setattr(pipeline, "segment_volume", lambda *a, **k: calls.append(1) or original(*a, **k))
    segmentation, detection = segment_and_detect(
        volume, fake_model(), scorer=CentreDensityScorer(), threads=1
    )
    assert len(calls) == 1
    assert segmentation.labels.array.shape == volume.array.shape
    assert "detect" in segmentation.timings
    assert len(detection.findings) == 1
    finding = detection.findings[0]
    assert np.linalg.norm(np.subtract(finding.measurement.center, nodule_center)) <= 1.0
    assert finding.measurement.long_axis_mm == pytest.approx(10.0, abs=1.5)
    assert detection.labels.shape == volume.array.shape


def test_only_blobs_in_the_lungs_are_findings(chest):
    volume, nodule_center, mediastinum = chest
    segmentation, _ = segment_and_detect(volume, fake_model(), scorer=CentreDensityScorer(), threads=1)
    # A dense ball in the mediastinum (between the lungs) and one outside the body are not looked at.
    lps = segmentation.model_grid.ijk_to_lps(
        np.argwhere(np.ones(segmentation.model_grid.array.shape, bool))[:, ::-1]
    )
    shape = segmentation.model_grid.array.shape
    for center, hu in ((mediastinum, 300.0), (mediastinum + np.array([0.0, 60.0, 0.0]), 40.0)):
        ball = (np.linalg.norm(lps - center, axis=1) <= 5.0).reshape(shape)
        segmentation.model_grid.array[ball] = hu
    detection = detect_from_segmentation(segmentation, volume, scorer=CentreDensityScorer())
    assert len(detection.findings) == 1
    assert np.linalg.norm(np.subtract(detection.findings[0].measurement.center, nodule_center)) <= 1.0


def test_a_model_without_a_lung_class_is_refused(chest):
    volume, _, _ = chest
    segmentation, _ = segment_and_detect(volume, fake_model(), scorer=CentreDensityScorer(), threads=1)
    segmentation.class_names = ("background", "liver", "lung nodule")
    with pytest.raises(InputError, match="no lungs"):
        detect_from_segmentation(segmentation, volume, scorer=CentreDensityScorer())
