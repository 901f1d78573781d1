"""Intensity normalisation named in model cards (``input.normalization``).

Shared by training and inference so that both see identical network inputs.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import ndimage

OUTSIDE_AIR_THRESHOLD_HU = -500.0
OUTSIDE_AIR_MEDIAN_HU = -975.0


def outside_air_mask(hu: np.ndarray) -> np.ndarray:
    """Air outside the patient: in each axial slice (``hu`` is ``[z, y, x]``), air regions
    (< -500 HU) that reach the slice's edge and are pure air (median below -975 HU).

    Working per slice keeps the trachea and lungs apart from the air around the body even
    where an all-air slab (padding, a slice above the patient) would join them in 3-D.
    Lungs cut by the field of view also reach the edge, but their parenchyma has a median
    well above -975 HU, so they are not marked.
    """
    structure = np.zeros((3, 3, 3), dtype=bool)
    structure[1] = ndimage.generate_binary_structure(2, 1)
    labels, count = ndimage.label(hu < OUTSIDE_AIR_THRESHOLD_HU, structure=structure)
    if count == 0:
        return np.zeros(hu.shape, dtype=bool)
    edges = np.concatenate(
        [labels[:, 0].ravel(), labels[:, -1].ravel(), labels[:, :, 0].ravel(), labels[:, :, -1].ravel()]
    )
    edges = np.unique(edges[edges > 0])
    if edges.size == 0:
        return np.zeros(hu.shape, dtype=bool)
    medians = np.atleast_1d(ndimage.median(hu, labels, edges))
    outside = np.zeros(count + 1, dtype=bool)
    outside[edges[medians < OUTSIDE_AIR_MEDIAN_HU]] = True
    return outside[labels]


def normalize_intensity(
    hu: np.ndarray, spec: dict[str, Any], outside: np.ndarray | None = None
) -> np.ndarray:
    """Map CT values (HU) to network input, as the card's ``normalization`` says.

    Supported: ``{"type": "window", "min": a, "max": b}`` clips HU to ``[a, b]`` and
    scales linearly to ``[-1, 1]``. With ``"outside_air": v`` as well, air outside the
    patient (:func:`outside_air_mask`) is set to ``v``, so the network can tell a dark lung
    from the air around the body without needing context.

    Args:
        hu: CT in HU (the whole volume, so the air outside reaches its edge).
        spec: the card's normalisation.
        outside: a precomputed outside-air mask (training passes the mask of the whole
            scan, warped with its patch); computed from ``hu`` when ``None``.

    Raises:
        ValueError: unknown normalisation type.
    """
    if spec.get("type") == "window":
        low, high = float(spec["min"]), float(spec["max"])
        out = np.clip(hu.astype(np.float32, copy=False), low, high)
        out -= (low + high) / 2.0
        out *= 2.0 / (high - low)
        if "outside_air" in spec:
            out[outside_air_mask(hu) if outside is None else outside] = float(spec["outside_air"])
        return out
    raise ValueError(f"unknown intensity normalisation {spec!r}")
