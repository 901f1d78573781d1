"""Nodule detection: candidates from the CT, a patch classifier's score, a mask per finding.

1. Candidates (:mod:`.candidates`): bright blobs inside the filled lungs of the model grid.
2. Score (:mod:`.nodule_scorer`): the calibrated probability from the 3-D patch classifier
   (:mod:`.patch_classifier`), which rejects vessels, airway walls and pleural bumps, fused
   with the candidate's place in the generator's ranking.
3. Candidates with ``score >= threshold``, best first, are outlined on the input grid by
   half-maximum region growing (:mod:`.nodule_mask`) and measured (:mod:`.measure`); one
   whose centre falls in an earlier finding's mask, whose mask lies mostly
   (``SAME_OBJECT_OVERLAP``) in earlier findings' masks, or whose equivalent-sphere
   diameter is under ``min_diameter_mm``, is dropped. Findings are numbered 1, 2, ... by score, and the
   label map on the input grid holds each finding's id.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..io.volume import Volume
from ..progress import CancelToken, ProgressCallback, check_cancelled, no_progress
from .candidates import Candidate, filled_lungs, find_candidates, search_region
from .measure import LUNG_RADS_VERSION, NoduleMeasurement, measure_component
from .nodule_mask import nodule_mask
from .nodule_scorer import NoduleScorer
from .patch_classifier import extract_patches

DEFAULT_THRESHOLD = 0.5
MIN_DIAMETER_MM = 3.0
SAME_OBJECT_OVERLAP = 0.5
"""A grown mask with at least this share of its voxels in earlier findings' masks is the same object."""


@dataclass
class Finding:
    """One detected nodule (``candidate``: the blob it grew from; ``None`` for other detectors,
    e.g. MONAI bundles)."""

    id: int
    score: float
    measurement: NoduleMeasurement
    candidate: Candidate | None
    mask_slices: tuple[slice, slice, slice] = field(repr=False)
    mask: np.ndarray = field(repr=False)

    def to_json(self) -> dict[str, Any]:
        """The finding as ``findings.json`` lists it."""
        data: dict[str, Any] = {"id": self.id, "score": round(self.score, 4)}
        data.update(self.measurement.to_json())
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
            "diameter": (
                "diameter_mm is the longest axial diameter; mean_diameter_mm = (long + short axis) / 2"
            ),
            "lung_rads_version": LUNG_RADS_VERSION,
            "candidates": self.candidates,
            "findings": [finding.to_json() for finding in self.findings],
        }


def detect_nodules(
    grid: Volume,
    lungs: np.ndarray,
    image: Volume,
    scorer: NoduleScorer,
    threshold: float = DEFAULT_THRESHOLD,
    min_diameter_mm: float = MIN_DIAMETER_MM,
    progress: ProgressCallback = no_progress,
    cancel: CancelToken | None = None,
) -> DetectionResult:
    """Find, score, outline and measure nodules.

    Args:
        grid: the CT in HU on the model grid (isotropic, canonical LPS),
            e.g. ``SegmentationResult.model_grid``.
        lungs: boolean lung mask on ``grid``.
        image: the input CT (HU) whose grid the findings' masks and measurements use.
        scorer: the candidate scorer (:func:`.nodule_scorer.scorer_for_model`).
        threshold: report findings with ``score >= threshold``.
        min_diameter_mm: drop findings whose equivalent-sphere diameter is smaller.
        progress: ``(fraction, message)`` callback.
        cancel: checked between findings.

    Returns:
        The detection result.

    Raises:
        ValueError: ``threshold`` outside [0, 1].
    """
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold must be in [0, 1], got {threshold}")
    spacing = float(np.mean(grid.spacing))
    filled = filled_lungs(lungs, spacing) if lungs.any() else lungs
    progress(0.0, "detection: looking for candidates")
    candidates = find_candidates(grid, search_region(filled, lungs, spacing))
    check_cancelled(cancel)
    progress(0.3, f"detection: scoring {len(candidates)} candidate(s)")
    centers = np.array([c.center_lps for c in candidates]).reshape(-1, 3)
    ranks = np.array([c.rank for c in candidates])
    scores = scorer.score(extract_patches(grid, centers), ranks) if candidates else np.zeros(0)
    filled_volume = grid.with_array(filled.astype(np.uint8))
    kept: list[Finding] = []
    order = [int(i) for i in np.argsort(-scores, kind="stable") if scores[i] >= threshold]
    on_input = (
        np.rint(image.lps_to_ijk(centers)[:, ::-1]).astype(int) if candidates else np.zeros((0, 3), int)
    )
    claimed = np.zeros(image.array.shape, dtype=bool)
    for rank, index in enumerate(order, start=1):
        check_cancelled(cancel)
        progress(0.4 + 0.6 * rank / len(order), f"detection: outlining finding {rank}/{len(order)}")
        candidate = candidates[index]
        if any(_contains(finding, on_input[index]) for finding in kept):
            continue
        grown = nodule_mask(image, np.array(candidate.center_lps), candidate.radius_mm, filled_volume)
        if grown is None:
            continue
        slices, mask = grown
        if (claimed[slices] & mask).sum() >= SAME_OBJECT_OVERLAP * mask.sum():
            continue  # mostly an object already reported (a second candidate on a large mass)
        measurement = measure_component(mask, image.crop(slices))
        if (6.0 * measurement.volume_mm3 / np.pi) ** (1.0 / 3.0) < min_diameter_mm:
            continue
        kept.append(Finding(0, float(scores[index]), measurement, candidate, slices, mask))
        claimed[slices] |= mask
    labels = np.zeros(image.array.shape, dtype=np.uint16 if len(kept) > 255 else np.uint8)
    for number, finding in enumerate(kept, start=1):
        finding.id = number
        box = labels[finding.mask_slices]
        box[finding.mask & (box == 0)] = number  # a higher-scored finding keeps shared voxels
    progress(1.0, f"detection: {len(kept)} finding(s) from {len(candidates)} candidate(s)")
    return DetectionResult(kept, labels, threshold, scorer.name, len(candidates))


def _contains(finding: Finding, kji: np.ndarray) -> bool:
    """True if the input-grid voxel ``kji`` lies in ``finding``'s mask."""
    k, j, i = kji - [s.start for s in finding.mask_slices]
    shape = finding.mask.shape
    return 0 <= k < shape[0] and 0 <= j < shape[1] and 0 <= i < shape[2] and bool(finding.mask[k, j, i])
