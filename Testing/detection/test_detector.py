"""Detector plumbing on synthetic CT: positions in LPS, masks on the input grid, score order.

The scorer here is a stand-in that reads the patch centre's density, so these tests check
candidates, outlining, measurement and ordering, not the trained classifier (see
test_nodule_classifier.py and lab/experiments/detect_froc.py for that).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from MedSegAILib.detection.candidates import filled_lungs, find_candidates, search_region
from MedSegAILib.detection.detector import detect_nodules
from MedSegAILib.detection.patch_classifier import PATCH_VOXELS
from MedSegAILib.inference.resample import resample_to_spacing, to_canonical
from MedSegAILib.io import Volume

from .synthetic import ellipsoid_mask, grid, rotation

MODEL_SPACING = (2.0, 2.0, 2.0)


class CentreDensityScorer:
    """Score = the patch centre's HU mapped from [-800, 200] to [0, 1]."""

    name = "centre density (test stand-in)"

    def score(self, patches: np.ndarray, ranks: np.ndarray) -> np.ndarray:
        c = PATCH_VOXELS // 2
        centre = patches[:, c - 1 : c + 1, c - 1 : c + 1, c - 1 : c + 1].mean(axis=(1, 2, 3))
        return np.clip((centre + 800.0) / 1000.0, 0.0, 1.0)


def model_grid(image: Volume) -> Volume:
    """The canonical grid at model spacing that the network would run on."""
    return Volume.from_sitk(resample_to_spacing(to_canonical(image.to_sitk()), MODEL_SPACING))


def detect(image: Volume, **options):
    model = model_grid(image)
    return detect_nodules(model, model.array < -500, image, CentreDensityScorer(), **options)


@pytest.fixture(scope="module")
def oblique_scan():
    """An oblique, anisotropic CT (lung -800 HU) holding a 10 mm solid nodule (+40 HU)."""
    image = grid(
        (36, 80, 72),
        (0.7, 0.8, 2.5),
        origin=(-30.0, 20.0, -50.0),
        direction=rotation("z", 20) @ rotation("y", 12),
        fill=-800.0,
    )
    center = image.ijk_to_lps([33.4, 41.7, 17.2])
    image.array[ellipsoid_mask(image, center, (5.0, 5.0, 5.0))] = 40.0
    return image, center


def test_sphere_on_oblique_anisotropic_grid_is_found_at_its_lps_position(oblique_scan):
    image, center = oblique_scan
    result = detect(image)
    assert len(result.findings) == 1
    finding = result.findings[0]
    assert finding.id == 1 and finding.score > 0.5
    assert np.linalg.norm(np.subtract(finding.measurement.center, center)) <= 1.0
    assert finding.measurement.long_axis_mm == pytest.approx(10.0, abs=1.5)
    assert finding.measurement.volume_mm3 == pytest.approx(4 / 3 * np.pi * 125, rel=0.25)
    # The label map is on the input grid and its voxel at the centre holds the id.
    assert result.labels.shape == image.array.shape
    i, j, k = np.rint(image.lps_to_ijk(center)).astype(int)
    assert result.labels[k, j, i] == 1
    truth = image.array > 0
    assert abs((result.labels == 1).sum() - truth.sum()) <= 0.25 * truth.sum()


def test_empty_lung_gives_no_findings_and_a_valid_findings_document(oblique_scan):
    image, _ = oblique_scan
    empty = image.with_array(np.full(image.array.shape, -800.0, np.float32))
    result = detect(empty)
    assert result.findings == [] and not result.labels.any()
    document = json.loads(json.dumps(result.findings_json()))
    assert document["coordinate_system"] == "LPS" and document["units"] == "mm"
    assert document["findings"] == []


def test_no_lungs_gives_no_candidates(oblique_scan):
    image, _ = oblique_scan
    model = model_grid(image)
    result = detect_nodules(model, np.zeros(model.array.shape, bool), image, CentreDensityScorer())
    assert result.findings == [] and result.candidates == 0


def test_findings_are_sorted_by_score_and_cut_at_the_threshold():
    image = grid((50, 60, 110), (1.0, 1.0, 1.0), fill=-850.0)
    centers = [image.ijk_to_lps(p) for p in ([20, 30, 25], [55, 30, 25], [90, 30, 25])]
    for center, hu in zip(centers, (-350.0, 40.0, -150.0)):  # scores 0.45, 0.84, 0.65
        image.array[ellipsoid_mask(image, center, (6.0, 6.0, 6.0))] = hu
    result = detect(image, threshold=0.55)
    assert [f.id for f in result.findings] == [1, 2]
    assert result.findings[0].score > result.findings[1].score >= 0.55
    assert np.linalg.norm(np.subtract(result.findings[0].measurement.center, centers[1])) < 1.0
    assert np.linalg.norm(np.subtract(result.findings[1].measurement.center, centers[2])) < 1.0
    assert result.candidates >= 3
    document = result.findings_json()["findings"]
    assert [f["id"] for f in document] == [1, 2] and document[0]["score"] >= document[1]["score"]
    for key in (
        "center",
        "bbox",
        "diameter_mm",
        "volume_mm3",
        "score",
        "long_axis_mm",
        "short_axis_mm",
        "mean_diameter_mm",
        "lung_rads",
    ):
        assert key in document[0]
    assert set(np.unique(result.labels)) == {0, 1, 2}


def test_a_juxta_pleural_nodule_is_outlined_without_the_chest_wall():
    image = grid((50, 70, 70), (1.0, 1.0, 1.0), fill=-850.0)
    image.array[:, :, 50:] = 40.0  # chest wall on the patient's left
    center = image.ijk_to_lps([47.0, 35.0, 25.0])  # 10 mm nodule, 3 mm into the lung from the wall
    image.array[ellipsoid_mask(image, center, (5.0, 5.0, 5.0))] = 40.0
    result = detect(image)
    assert result.findings, "the juxta-pleural nodule was not found"
    finding = result.findings[0]
    assert np.linalg.norm(np.subtract(finding.measurement.center, center)) <= 3.0
    assert finding.measurement.long_axis_mm < 14.0
    assert finding.measurement.volume_mm3 < 1.3 * 4 / 3 * np.pi * 125


def test_candidates_below_the_minimum_diameter_are_dropped():
    image = grid((30, 40, 40), (1.0, 1.0, 1.0), fill=-800.0)
    image.array[ellipsoid_mask(image, image.ijk_to_lps([20, 20, 15]), (1.0, 1.0, 1.0))] = 40.0
    assert detect(image).findings == []


def test_blobs_rank_above_vessels_of_the_same_radius():
    image = grid((60, 60, 60), (2.0, 2.0, 2.0), fill=-850.0)
    ball_center, vessel_center = (30.0, 60.0, 60.0), (90.0, 60.0, 60.0)
    image.array[ellipsoid_mask(image, ball_center, (4.0, 4.0, 4.0))] = 40.0
    image.array[ellipsoid_mask(image, vessel_center, (4.0, 4.0, 60.0), rotation("x", 10))] = 40.0
    lungs = image.array < -500
    candidates = find_candidates(image, search_region(filled_lungs(lungs, 2.0), lungs, 2.0))
    assert candidates, "no candidate at all"
    assert np.linalg.norm(np.subtract(candidates[0].center_lps, ball_center)) <= 2.0
    assert candidates[0].radius_mm == pytest.approx(4.0, abs=2.0)
