"""Label overlays for figures: each label in its colour, the rest transparent."""

import numpy as np
from MedSegAILib.report.overlay import label_overlay


def test_each_listed_label_is_painted_in_its_colour_and_the_rest_is_transparent():
    labels = np.array([[0, 1], [2, 3]])
    rgba = label_overlay(labels, {1: np.array([1.0, 0.0, 0.0]), 2: np.array([0.0, 0.5, 1.0])}, alpha=0.4)
    assert rgba.shape == (2, 2, 4)
    assert rgba[0, 1].tolist() == [1.0, 0.0, 0.0, 0.4]
    assert rgba[1, 0].tolist() == [0.0, 0.5, 1.0, 0.4]
    assert rgba[0, 0, 3] == 0.0 and rgba[1, 1, 3] == 0.0  # background and an unlisted label
