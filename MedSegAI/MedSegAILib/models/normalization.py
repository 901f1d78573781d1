"""Intensity normalisation named in model cards (``input.normalization``).

Shared by training and inference so that both see identical network inputs.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def normalize_intensity(hu: np.ndarray, spec: dict[str, Any]) -> np.ndarray:
    """Map CT values (HU) to network input, as the card's ``normalization`` says.

    Supported: ``{"type": "window", "min": a, "max": b}`` clips HU to ``[a, b]`` and
    scales linearly to ``[-1, 1]``.

    Raises:
        ValueError: unknown normalisation type.
    """
    if spec.get("type") == "window":
        low, high = float(spec["min"]), float(spec["max"])
        out = np.clip(hu.astype(np.float32, copy=False), low, high)
        out -= (low + high) / 2.0
        out *= 2.0 / (high - low)
        return out
    raise ValueError(f"unknown intensity normalisation {spec!r}")
