"""Colour overlays of label maps for figures."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np


def label_overlay(labels: np.ndarray, colours: Mapping[int, np.ndarray], alpha: float = 0.45) -> np.ndarray:
    """An RGBA image (``labels.shape + (4,)``, values 0..1) painting each label value in its colour.

    Args:
        labels: integer label map (any shape).
        colours: label value -> RGB in 0..1; values not listed stay transparent.
        alpha: opacity of the painted voxels.
    """
    rgba = np.zeros(labels.shape + (4,))
    for value, colour in colours.items():
        rgba[labels == value] = (*np.asarray(colour, float)[:3], alpha)
    return rgba
