"""Nodule detection from the segmentation network's nodule probability.

1. Candidates: 26-connected components of ``probability >= candidate_probability`` on the
   model grid (where the network ran); with a ``region`` (the lungs), only components that
   touch it.
2. Each candidate is carried to the input grid: its probability (other candidates blanked)
   is resampled linearly onto the input voxels around it and thresholded again, giving a
   mask at the scan's own resolution.
3. Measurements (:mod:`.measure`) and features (:mod:`.features`) on that mask; candidates
   smaller than ``min_diameter_mm`` (equivalent sphere) are dropped.
4. A score (:mod:`.scorer`); findings with ``score >= threshold`` are kept, sorted by score
   (ties: larger first) and numbered 1, 2, ... The label map on the input grid holds
   each finding's id.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from ..io.volume import Volume
from ..progress import CancelToken, ProgressCallback, check_cancelled, no_progress
from .features import candidate_features
from .measure import LUNG_RADS_VERSION, NoduleMeasurement, measure_component
from .scorer import ProbabilityScorer, Scorer

DEFAULT_THRESHOLD = 0.5
CANDIDATE_PROBABILITY = 0.5
MIN_DIAMETER_MM = 3.0
_CONNECTIVITY = np.ones((3, 3, 3), dtype=bool)


@dataclass
class Finding:
    """One detected nodule."""

    id: int
    score: float
    measurement: NoduleMeasurement
    features: dict[str, float]
    mask_slices: tuple[slice, slice, slice] = field(repr=False)
    mask: np.ndarray = field(repr=False)

    def to_json(self) -> dict[str, Any]:
        """The finding as ``findings.json`` lists it."""
        data: dict[str, Any] = {"id": self.id, "score": round(self.score, 4)}
        data.update(self.measurement.to_json())
        data["max_probability"] = round(self.features["max_probability"], 4)
        return data


@dataclass
class DetectionResult:
    """Findings sorted by score, and their label map on the input grid (value = id)."""

    findings: list[Finding]
    labels: np.ndarray
    threshold: float
    scorer: str
    candidates: int

    def findings_json(self) -> dict[str, Any]:
        """The contents of ``findings.json`` (CONTRACT.md)."""
        return {
            "coordinate_system": "LPS",
            "units": "mm",
            "threshold": self.threshold,
            "score": self.scorer,
            "diameter": "diameter_mm is the longest axial diameter; mean_diameter_mm = (long + short axis) / 2",
            "lung_rads_version": LUNG_RADS_VERSION,
            "candidates": self.candidates,
            "findings": [finding.to_json() for finding in self.findings],
        }


def detect_nodules(
    nodule_probability: Volume,
    image: Volume,
    threshold: float = DEFAULT_THRESHOLD,
    scorer: Optional[Scorer] = None,
    candidate_probability: float = CANDIDATE_PROBABILITY,
    min_diameter_mm: float = MIN_DIAMETER_MM,
    region: Optional[np.ndarray] = None,
    progress: ProgressCallback = no_progress,
    cancel: Optional[CancelToken] = None,
) -> DetectionResult:
    """Find, measure and score nodules.

    Args:
        nodule_probability: the network's nodule probability (0..1) on the model grid.
        image: the input CT (HU) whose grid the findings' masks and measurements use.
        threshold: report findings with ``score >= threshold``.
        scorer: the candidate scorer; default: the maximum nodule probability.
        candidate_probability: probability threshold that defines candidate regions.
        min_diameter_mm: drop candidates whose equivalent-sphere diameter is smaller.
        region: optional boolean map on the model grid (the lungs); candidates that do not
            touch it (26-neighbourhood) are dropped.
        progress: ``(fraction, message)`` callback.
        cancel: checked between candidates.

    Returns:
        The detection result.

    Raises:
        ValueError: ``threshold`` or ``candidate_probability`` outside [0, 1].
    """
    for name, value in (("threshold", threshold), ("candidate_probability", candidate_probability)):
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{name} must be in [0, 1], got {value}")
    scorer = scorer or ProbabilityScorer()
    components, count = ndimage.label(nodule_probability.array >= candidate_probability, structure=_CONNECTIVITY)
    boxes = ndimage.find_objects(components)
    if region is not None:
        touching = set(np.unique(components[ndimage.binary_dilation(region, _CONNECTIVITY)]).tolist())
        boxes = [box if index in touching else None for index, box in enumerate(boxes, start=1)]
    kept: list[Finding] = []
    for index, box in enumerate(boxes, start=1):
        check_cancelled(cancel)
        progress(index / max(count, 1), f"detection: candidate {index}/{count}")
        if box is None:
            continue
        candidate = _candidate(nodule_probability, components, index, box, image, candidate_probability)
        if candidate is None:
            continue
        slices, mask, probabilities = candidate
        crop = crop_volume(image, slices)
        features = candidate_features(probabilities, mask, crop)
        if features["equivalent_diameter_mm"] < min_diameter_mm:
            continue
        score = float(scorer.score(features))
        if score >= threshold:
            kept.append(Finding(0, score, measure_component(mask, crop), features, slices, mask))
    kept.sort(key=lambda f: (-f.score, -f.measurement.volume_mm3))
    labels = np.zeros(image.array.shape, dtype=np.uint16 if len(kept) > 255 else np.uint8)
    for number, finding in enumerate(kept, start=1):
        finding.id = number
        region = labels[finding.mask_slices]
        region[finding.mask & (region == 0)] = number  # a higher-scored finding keeps shared voxels
    progress(1.0, f"detection: {len(kept)} finding(s) from {count} candidate(s)")
    return DetectionResult(kept, labels, threshold, scorer.name, count)


def crop_volume(volume: Volume, slices: tuple[slice, slice, slice]) -> Volume:
    """The sub-volume ``volume.array[slices]`` with geometry that keeps every voxel's LPS position."""
    start = [s.start for s in slices][::-1]  # (i, j, k)
    return Volume(volume.array[slices], volume.spacing, tuple(volume.ijk_to_lps(start)), volume.direction)


def _candidate(
    probability: Volume, components: np.ndarray, index: int, box: tuple[slice, ...], image: Volume, level: float
) -> Optional[tuple[tuple[slice, slice, slice], np.ndarray, np.ndarray]]:
    """Input-grid (slices, mask) of one model-grid component, plus its model-grid probabilities."""
    model_slices = tuple(slice(max(s.start - 1, 0), min(s.stop + 1, n)) for s, n in zip(box, components.shape))
    labels = components[model_slices]
    values = probability.array[model_slices].astype(np.float32, copy=True)
    values[(labels != index) & (labels > 0)] = 0.0  # blank neighbouring candidates
    own = labels == index
    moving = crop_volume(probability, model_slices).with_array(values)
    slices = _input_box(moving, image)
    if slices is None:
        return None
    reference = crop_volume(image, slices)
    resampled = _resample(moving, reference, sitk.sitkLinear)
    mask = resampled >= level
    if not mask.any():  # smaller than the interpolation can resolve: nearest neighbour
        mask = _resample(moving.with_array(own.astype(np.float32)), reference, sitk.sitkNearestNeighbor) > 0.5
    if not mask.any():
        return None
    return slices, mask, probability.array[model_slices][own]


def _input_box(model_crop: Volume, image: Volume) -> Optional[tuple[slice, slice, slice]]:
    """Input-grid index box (as ``[k, j, i]`` slices) covering a model-grid crop."""
    k, j, i = model_crop.array.shape
    corners = np.array([[a, b, c] for a in (-0.5, i - 0.5) for b in (-0.5, j - 0.5) for c in (-0.5, k - 0.5)])
    ijk = image.lps_to_ijk(model_crop.ijk_to_lps(corners))
    low = np.maximum(np.floor(ijk.min(axis=0)).astype(int), 0)
    high = np.minimum(np.ceil(ijk.max(axis=0)).astype(int) + 1, image.shape_ijk)
    if np.any(high <= low):
        return None
    return tuple(slice(int(lo), int(hi)) for lo, hi in zip(low[::-1], high[::-1]))  # type: ignore[return-value]


def _resample(moving: Volume, reference: Volume, interpolator: int) -> np.ndarray:
    image = sitk.Resample(moving.to_sitk(), reference.to_sitk(), sitk.Transform(), interpolator, 0.0, sitk.sitkFloat32)
    return sitk.GetArrayFromImage(image)
