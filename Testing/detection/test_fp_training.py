"""FP-reduction training: fitted on candidates labelled by the hit criterion, it ranks a
nodule above a vessel that the network scores higher."""

from __future__ import annotations

import numpy as np

from MedSegAILib.detection.detector import detect_nodules
from MedSegAILib.detection.fp_training import CandidateSet
from MedSegAILib.detection.froc import ReferenceNodule

from .synthetic import ellipsoid_mask, grid, rotation


def scan(rng: np.random.Generator):
    """A CT and a probability map with one nodule (p~0.7) and two vessels (p~0.85)."""
    image = grid((30, 60, 60), (1.2, 1.2, 2.0), fill=-850.0)
    probability = np.zeros(image.array.shape, np.float32)
    nodule_center = image.ijk_to_lps([15 + rng.uniform(-3, 3), 30, 15])
    radius = rng.uniform(3.5, 6.0)
    ball = ellipsoid_mask(image, nodule_center, (radius,) * 3)
    image.array[ball] = 30.0
    probability[ball] = rng.uniform(0.6, 0.8)
    for x in (38, 50):
        axis = rotation("y", rng.uniform(20, 60)) @ rotation("z", rng.uniform(0, 90))
        tube = ellipsoid_mask(image, image.ijk_to_lps([x, 30, 15]), (1.5, 1.5, 16.0), axis)
        image.array[tube] = 60.0
        probability[tube] = rng.uniform(0.8, 0.95)
    return image, image.with_array(probability), ReferenceNodule(tuple(nodule_center), 2 * radius)


def test_fitted_scorer_ranks_the_nodule_above_brighter_vessels():
    rng = np.random.default_rng(1)
    training = CandidateSet()
    for _ in range(6):
        image, probability, nodule = scan(rng)
        assert training.add_scan(probability, image, [nodule]) == (1, 2)
    scorer = training.fit()

    image, probability, nodule = scan(rng)
    by_probability = detect_nodules(probability, image, threshold=0.0, candidate_probability=0.3)
    assert np.linalg.norm(np.subtract(by_probability.findings[0].measurement.center, nodule.center)) > 5
    fitted = detect_nodules(probability, image, threshold=0.5, scorer=scorer, candidate_probability=0.3)
    assert len(fitted.findings) == 1
    assert np.linalg.norm(np.subtract(fitted.findings[0].measurement.center, nodule.center)) < 1.5
