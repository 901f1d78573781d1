"""A procedural chest phantom for the training tests: body, two air-filled lungs, trachea."""

from __future__ import annotations

import numpy as np


def chest_phantom(
    shape: tuple[int, int, int] = (48, 64, 80), spacing: float = 4.0
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """A canonical LPS phantom ``[z, y, x]`` in HU (x towards the patient's left).

    Returns:
        ``(hu, truth)`` with boolean masks ``body``, ``left_lung``, ``right_lung``,
        ``trachea`` and ``vessel`` (a soft-tissue ball inside the left lung).
    """
    z, y, x = np.mgrid[: shape[0], : shape[1], : shape[2]].astype(float)
    cz, cy, cx = (shape[0] - 1) / 2, (shape[1] - 1) / 2, (shape[2] - 1) / 2
    body = ((y - cy) / (0.42 * shape[1])) ** 2 + ((x - cx) / (0.45 * shape[2])) ** 2 <= 1.0

    def lung_shape(x0: float) -> np.ndarray:
        return (
            ((x - x0) / (0.15 * shape[2])) ** 2
            + ((y - cy) / (0.28 * shape[1])) ** 2
            + ((z - cz + 2) / (0.36 * shape[0])) ** 2
        ) <= 1.0

    left = lung_shape(cx + 0.22 * shape[2]) & body
    right = lung_shape(cx - 0.22 * shape[2]) & body
    trachea = ((x - cx) ** 2 + (y - cy + 3) ** 2 <= 2.2**2) & (z >= cz - 4) & body
    vessel = ((x - (cx + 0.22 * shape[2])) ** 2 + (y - cy) ** 2 + (z - cz) ** 2) <= 2.0**2
    rng = np.random.default_rng(0)
    hu = np.full(shape, -1000.0, dtype=np.float32)
    hu[body] = 40.0
    hu[left | right] = -860.0
    hu[vessel] = 40.0
    hu[trachea] = -1000.0
    hu += rng.normal(0, 15, size=shape).astype(np.float32)
    return hu, {"body": body, "left_lung": left, "right_lung": right, "trachea": trachea, "vessel": vessel}
