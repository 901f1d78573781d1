"""The outside-air input marker: air around the patient, never the lungs, even when cut by the
field of view."""

import numpy as np
from MedSegAILib.models.normalization import normalize_intensity, outside_air_mask
from phantom import chest_phantom

SPEC = {"type": "window", "min": -1024, "max": 600}


def test_air_around_the_body_is_outside_and_the_lungs_are_not():
    hu, truth = chest_phantom()
    outside = outside_air_mask(hu)
    assert outside[~truth["body"]].mean() > 0.99
    assert not outside[truth["left_lung"] | truth["right_lung"]].any()


def test_lungs_cut_by_a_crop_are_not_outside():
    hu, truth = chest_phantom()
    x = np.nonzero(truth["left_lung"].any(axis=(0, 1)))[0]
    crop = (slice(None), slice(None), slice(None, (x[0] + x[-1]) // 2))  # the left lung reaches the edge
    outside = outside_air_mask(hu[crop])
    assert not outside[truth["left_lung"][crop]].any()


def test_normalisation_marks_outside_air_only_when_the_card_asks():
    hu, truth = chest_phantom()
    plain = normalize_intensity(hu, SPEC)
    assert plain.min() >= -1.0 and plain.max() <= 1.0
    marked = normalize_intensity(hu, {**SPEC, "outside_air": -2.0})
    assert np.all(marked[outside_air_mask(hu)] == -2.0)
    # The phantom's trachea is pure air reaching the top face, unconnected to the lungs, so
    # it counts as outside; in a real scan it joins the lungs through the bronchi.
    inside = truth["body"] & ~truth["trachea"]
    assert np.array_equal(marked[inside], plain[inside])
