"""Nodule detection: candidates from the CT, a patch classifier's score, a mask per finding.

1. Candidates (:mod:`.candidates`): bright blobs inside the filled lungs of the model grid.
2. Score (:mod:`.nodule_scorer`): the calibrated probability from the 3-D patch classifier
   (:mod:`.patch_classifier`), which rejects vessels, airway walls and pleural bumps, fused
   with the candidate's place in the generator's ranking.
3. Candidates with ``score >= threshold``, best first, are outlined on the input grid by
   half-maximum region growing (:mod:`.nodule_mask`). One whose centre falls in an earlier
   finding's outline is skipped; one whose outline touches or overlaps earlier findings'
   outlines joins them into one finding with the best score (:mod:`.lesion_merge`: one lesion,
   one finding; an outline that redraws most of an earlier one adds only its voxels above that
   one's edge level); a new finding whose equivalent-sphere diameter is under ``min_diameter_mm`` is
   dropped. Each finding is measured once, on its whole outline (:mod:`.measure`). Findings are
   numbered 1, 2, ... by score; no two share or touch voxels, and the label map on the input grid
   holds each finding's id.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..io.volume import Volume
from ..progress import CancelToken, ProgressCallback, check_cancelled, no_progress
from .candidates import Candidate, filled_lungs, find_candidates, search_region
from .lesion_merge import FindingOutlines
from .measure import LUNG_RADS_VERSION, NoduleMeasurement, measure_component
from .nodule_mask import nodule_mask
from .nodule_scorer import NoduleScorer
from .patch_classifier import extract_patches

DEFAULT_THRESHOLD = 0.5
MIN_DIAMETER_MM = 3.0


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
    order = [int(i) for i in np.argsort(-scores, kind="stable") if scores[i] >= threshold]
    on_input = (
        np.rint(image.lps_to_ijk(centers)[:, ::-1]).astype(int) if candidates else np.zeros((0, 3), int)
    )
    outlines = FindingOutlines(image.array.shape)
    found: dict[int, Finding] = {}  # by outline key; keys grow as scores fall
    for key, index in enumerate(order, start=1):
        check_cancelled(cancel)
        progress(0.4 + 0.6 * key / len(order), f"detection: outlining candidate {key}/{len(order)}")
        candidate = candidates[index]
        if any(_contains(finding, on_input[index]) for finding in found.values()):
            continue
        grown = nodule_mask(image, np.array(candidate.center_lps), candidate.radius_mm, filled_volume)
        if grown is None:
            continue
        slices, mask, edge_hu = grown
        touched = outlines.touched_by(slices, mask)
        if touched:  # part of a lesion already found: it becomes that finding, measured whole
            if outlines.redraws(touched, slices, mask):
                edge_hu = outlines.edge_hu(touched)
                mask = mask & (image.array[slices] >= edge_hu)
            slices, mask = outlines.joined(touched, slices, mask)
            first = found[touched[0]]
            for key_touched in touched:
                del found[key_touched]
            key, score, candidate = touched[0], first.score, first.candidate
        else:
            score = float(scores[index])
        measurement = measure_component(mask, image.crop(slices))
        if not touched and (6.0 * measurement.volume_mm3 / np.pi) ** (1.0 / 3.0) < min_diameter_mm:
            continue
        found[key] = Finding(0, score, measurement, candidate, slices, mask)
        outlines.claim(key, slices, mask, edge_hu, touched[1:])
    kept = [found[key] for key in sorted(found)]
    labels = np.zeros(image.array.shape, dtype=np.uint16 if len(kept) > 255 else np.uint8)
    for number, finding in enumerate(kept, start=1):
        finding.id = number
        labels[finding.mask_slices][finding.mask] = number
    progress(1.0, f"detection: {len(kept)} finding(s) from {len(candidates)} candidate(s)")
    return DetectionResult(kept, labels, threshold, scorer.name, len(candidates))


def _contains(finding: Finding, kji: np.ndarray) -> bool:
    """True if the input-grid voxel ``kji`` lies in ``finding``'s mask."""
    k, j, i = kji - [s.start for s in finding.mask_slices]
    shape = finding.mask.shape
    return 0 <= k < shape[0] and 0 <= j < shape[1] and 0 <= i < shape[2] and bool(finding.mask[k, j, i])
