"""Detector on synthetic probability maps: positions in LPS, masks on the input grid, scores."""

from __future__ import annotations

import json

import numpy as np
import pytest
import SimpleITK as sitk

from MedSegAILib.detection.detector import detect_nodules
from MedSegAILib.detection.features import FEATURE_NAMES, candidate_features
from MedSegAILib.detection.scorer import LogisticScorer, ProbabilityScorer, fit_logistic, sha256_of
from MedSegAILib.errors import InputError
from MedSegAILib.inference.resample import resample_to_spacing, to_canonical
from MedSegAILib.io import Volume

from .synthetic import ellipsoid_mask, grid, lps_points, rotation

MODEL_SPACING = (1.5, 1.5, 1.5)


def model_grid(image: Volume) -> Volume:
    """The canonical grid at model spacing that the network would run on."""
    return Volume.from_sitk(resample_to_spacing(to_canonical(image.to_sitk()), MODEL_SPACING))


def soft_ball(volume: Volume, center, radius: float, peak: float = 0.95) -> np.ndarray:
    """A probability map: ``peak`` inside a ball, falling to 0 over ~2 mm at its surface."""
    distance = np.linalg.norm(lps_points(volume) - np.asarray(center), axis=-1)
    return (peak / (1.0 + np.exp((distance - radius) / 0.7))).astype(np.float32)


@pytest.fixture(scope="module")
def oblique_scan():
    """An oblique, anisotropic CT (lung -800 HU) holding a 10 mm solid nodule (+40 HU)."""
    image = grid((36, 80, 72), (0.7, 0.8, 2.5), origin=(-30.0, 20.0, -50.0),
                 direction=rotation("z", 20) @ rotation("y", 12), fill=-800.0)
    center = image.ijk_to_lps([33.4, 41.7, 17.2])
    image.array[ellipsoid_mask(image, center, (5.0, 5.0, 5.0))] = 40.0
    return image, center


def test_sphere_on_oblique_anisotropic_grid_is_found_at_its_lps_position(oblique_scan):
    image, center = oblique_scan
    model = model_grid(image)
    probability = model.with_array(soft_ball(model, center, 5.0))
    result = detect_nodules(probability, image)
    assert len(result.findings) == 1
    finding = result.findings[0]
    assert finding.id == 1 and finding.score == pytest.approx(0.95, abs=0.02)
    assert np.linalg.norm(np.subtract(finding.measurement.center, center)) <= 1.0
    assert finding.measurement.long_axis_mm == pytest.approx(10.0, abs=1.5)
    assert finding.measurement.volume_mm3 == pytest.approx(4 / 3 * np.pi * 125, rel=0.25)
    # The label map is on the input grid and its voxel at the centre holds the id.
    assert result.labels.shape == image.array.shape
    i, j, k = np.rint(image.lps_to_ijk(center)).astype(int)
    assert result.labels[k, j, i] == 1
    labelled = result.labels == 1
    assert abs(labelled.sum() - (image.array > 0).sum()) <= 0.25 * (image.array > 0).sum()


def test_empty_lung_gives_no_findings_and_a_valid_findings_document(oblique_scan):
    image, _ = oblique_scan
    model = model_grid(image)
    result = detect_nodules(model.with_array(np.full(model.array.shape, 0.02, np.float32)), image)
    assert result.findings == [] and not result.labels.any()
    document = json.loads(json.dumps(result.findings_json()))
    assert document["coordinate_system"] == "LPS" and document["units"] == "mm"
    assert document["findings"] == []


def test_findings_are_sorted_by_score_and_cut_at_the_threshold():
    image = grid((40, 60, 90), (1.0, 1.0, 2.0), fill=-800.0)
    centers = [image.ijk_to_lps(p) for p in ([20, 30, 20], [45, 30, 20], [70, 30, 20])]
    probability = image.with_array(np.maximum.reduce([
        soft_ball(image, centers[0], 4.0, 0.7), soft_ball(image, centers[1], 6.0, 0.9), soft_ball(image, centers[2], 5.0, 0.6)]))
    result = detect_nodules(probability, image, threshold=0.65, candidate_probability=0.3)
    assert [f.id for f in result.findings] == [1, 2]
    assert [round(f.score, 1) for f in result.findings] == [0.9, 0.7]
    assert np.linalg.norm(np.subtract(result.findings[0].measurement.center, centers[1])) < 1.0
    assert result.candidates == 3
    document = result.findings_json()["findings"]
    assert [f["id"] for f in document] == [1, 2] and document[0]["score"] >= document[1]["score"]
    for key in ("center", "bbox", "diameter_mm", "volume_mm3", "score", "long_axis_mm", "short_axis_mm", "mean_diameter_mm", "lung_rads"):
        assert key in document[0]
    assert set(np.unique(result.labels)) == {0, 1, 2}


def test_candidates_below_the_minimum_diameter_are_dropped():
    image = grid((30, 40, 40), (1.0, 1.0, 1.0), fill=-800.0)
    probability = image.with_array(soft_ball(image, image.ijk_to_lps([20, 20, 15]), 1.0))
    assert detect_nodules(probability, image, candidate_probability=0.5).findings == []


def _features_of(image: Volume, mask: np.ndarray) -> dict[str, float]:
    return candidate_features(np.full(mask.sum(), 0.8), mask, image.with_array(np.where(mask, 40.0, -800.0).astype(np.float32)))


def test_shape_features_tell_balls_from_vessels():
    image = grid((40, 40, 40), (0.8, 0.8, 1.25))
    ball = _features_of(image, ellipsoid_mask(image, (16, 16, 25), (5, 5, 5)))
    vessel = _features_of(image, ellipsoid_mask(image, (16, 16, 25), (1.6, 1.6, 14), rotation("y", 40)))
    assert ball["sphericity"] == pytest.approx(1.0, abs=0.15)
    assert vessel["sphericity"] < 0.8
    assert ball["elongation"] < 1.3 < 3.0 < vessel["elongation"]
    assert ball["equivalent_diameter_mm"] == pytest.approx(10.0, abs=0.7)


def test_logistic_scorer_fits_saves_and_refuses_an_altered_file(tmp_path):
    rng = np.random.default_rng(0)
    positives = rng.normal([0.9, 1.0], 0.1, size=(40, 2))
    negatives = rng.normal([0.6, 4.0], 0.3, size=(60, 2))
    x = np.vstack([positives, negatives])
    y = np.r_[np.ones(40), np.zeros(60)]
    scorer = fit_logistic(x, y, ("max_probability", "elongation"))
    scores = scorer.score_matrix(x)
    assert scores[:40].min() > 0.5 > scores[40:].max()
    path = tmp_path / "fp.safetensors"
    digest = scorer.save(path)
    loaded = LogisticScorer.load(path, digest)
    assert loaded.score({"max_probability": 0.9, "elongation": 1.0}) == pytest.approx(scorer.score({"max_probability": 0.9, "elongation": 1.0}))
    path.write_bytes(path.read_bytes() + b" ")
    with pytest.raises(InputError, match="SHA-256"):
        LogisticScorer.load(path, digest)
    assert sha256_of(path) != digest
    with pytest.raises(ValueError):
        fit_logistic(x, np.ones(100), ("a", "b"))


def test_probability_scorer_uses_the_network_probability():
    assert ProbabilityScorer().score({name: 0.0 for name in FEATURE_NAMES} | {"max_probability": 0.42}) == 0.42
