"""Features of one nodule candidate, for the false-positive reduction score.

Vessels seen in cross-section are the classic false positive: they are elongated (high
``elongation``), not compact (low ``sphericity``), and often weakly predicted. Every feature
is computed on the candidate's mask on the *input* grid (finer than the model grid), except
the probabilities, which come from the model grid.
"""

from __future__ import annotations

import numpy as np

from ..io.volume import Volume

FEATURE_NAMES = (
    "max_probability",
    "mean_probability",
    "log_volume_mm3",
    "equivalent_diameter_mm",
    "elongation",
    "flatness",
    "sphericity",
    "mean_hu",
    "std_hu",
)


def candidate_features(probabilities: np.ndarray, mask: np.ndarray, grid: Volume) -> dict[str, float]:
    """The features named in :data:`FEATURE_NAMES`.

    Args:
        probabilities: nodule probabilities of the candidate's voxels on the model grid (1-D).
        mask: the candidate's boolean mask, ``[k, j, i]`` on ``grid`` (the input CT, HU).
        grid: the input CT volume (HU values are read from ``grid.array``).

    Returns:
        Feature name -> value.
    """
    kji = np.argwhere(mask)
    axes = grid.direction @ np.diag(grid.spacing)
    voxel_volume = abs(float(np.linalg.det(axes)))
    volume = len(kji) * voxel_volume
    points = kji[:, ::-1] @ axes.T
    covariance = np.cov(points.T) if len(points) > 1 else np.zeros((3, 3))
    # Add a voxel's own variance so one-voxel-thin shapes stay finite.
    eigen = np.sort(np.linalg.eigvalsh(covariance))[::-1] + np.mean(grid.spacing) ** 2 / 12.0
    hu = grid.array[mask].astype(float)
    return {
        "max_probability": float(np.max(probabilities)),
        "mean_probability": float(np.mean(probabilities)),
        "log_volume_mm3": float(np.log(volume)),
        "equivalent_diameter_mm": float((6.0 * volume / np.pi) ** (1.0 / 3.0)),
        "elongation": float(np.sqrt(eigen[0] / eigen[1])),
        "flatness": float(np.sqrt(eigen[1] / eigen[2])),
        "sphericity": _sphericity(mask, grid.spacing, volume),
        "mean_hu": float(hu.mean()),
        "std_hu": float(hu.std()),
    }


def _sphericity(mask: np.ndarray, spacing: tuple[float, float, float], volume: float) -> float:
    """pi^(1/3) (6 V)^(2/3) / A, with A estimated from exposed voxel faces.

    Counting faces overestimates a smooth surface by 3/2 on average over orientations
    (Cauchy's projection formula), so the face area is scaled by 2/3. A ball scores about 1.
    """
    sx, sy, sz = spacing
    padded = np.pad(mask, 1)
    face_area = 0.0
    for axis, area in ((0, sx * sy), (1, sx * sz), (2, sy * sz)):  # array axes k, j, i
        face_area += area * np.count_nonzero(np.diff(padded, axis=axis))
    surface = face_area * 2.0 / 3.0
    return float(np.pi ** (1.0 / 3.0) * (6.0 * volume) ** (2.0 / 3.0) / surface)
