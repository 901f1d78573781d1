"""FROC analysis of nodule detections, as LUNA16 evaluates detectors.

Hit criterion: a predicted centre hits a reference nodule when it lies within the nodule's
radius, but at least :data:`MIN_HIT_RADIUS_MM`, of the nodule's centre. Each reference nodule
is counted once: its detection score is the highest score among the predictions that hit it;
other predictions that hit an already-detected nodule are neither true nor false positives.
A prediction that hits no nodule is a false positive.

Sensitivity at a false-positive rate ``r`` is the highest sensitivity the curve reaches with
at most ``r`` false positives per scan (a step function, no interpolation). The CPM is the
mean sensitivity at 1/8, 1/4, 1/2, 1, 2, 4 and 8 FP/scan.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

MIN_HIT_RADIUS_MM = 5.0
FP_RATES = (0.125, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0)


@dataclass(frozen=True)
class ReferenceNodule:
    """A true nodule: centre (LPS mm) and diameter (mm)."""

    center: tuple[float, float, float]
    diameter_mm: float


@dataclass(frozen=True)
class PredictedFinding:
    """A detector output: centre (LPS mm) and score."""

    center: tuple[float, float, float]
    score: float


@dataclass
class FrocResult:
    """The FROC curve (one point per distinct score threshold) and its summary."""

    thresholds: list[float]
    sensitivity: list[float]
    fp_per_scan: list[float]
    sensitivity_at: dict[float, float]
    cpm: float
    scans: int
    references: int
    predictions: int
    detected: int
    false_positives: int
    per_scan: dict[str, dict[str, int]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dictionary (``froc.json``)."""
        return {
            "hit_criterion": f"predicted centre within the reference radius, at least {MIN_HIT_RADIUS_MM} mm",
            "scans": self.scans,
            "references": self.references,
            "predictions": self.predictions,
            "detected_at_lowest_threshold": self.detected,
            "false_positives_at_lowest_threshold": self.false_positives,
            "cpm": round(self.cpm, 4),
            "sensitivity_at_fp_per_scan": {
                _rate_name(rate): round(value, 4) for rate, value in self.sensitivity_at.items()
            },
            "curve": [
                {"threshold": t, "fp_per_scan": round(f, 4), "sensitivity": round(s, 4)}
                for t, f, s in zip(self.thresholds, self.fp_per_scan, self.sensitivity)
            ],
            "per_scan": self.per_scan,
        }


def _rate_name(rate: float) -> str:
    return f"1/{int(round(1 / rate))}" if rate < 1 else f"{rate:g}"


def compute_froc(
    predictions: Mapping[str, Sequence[PredictedFinding]],
    references: Mapping[str, Sequence[ReferenceNodule]],
    fp_rates: Sequence[float] = FP_RATES,
    min_hit_radius_mm: float = MIN_HIT_RADIUS_MM,
) -> FrocResult:
    """FROC curve, sensitivities at ``fp_rates`` and CPM.

    Args:
        predictions: scan id -> findings. Scans absent here had no findings.
        references: scan id -> reference nodules, for *every* evaluated scan (a scan without
            nodules maps to an empty list); the number of scans is ``len(references)``.
        fp_rates: false positives per scan at which sensitivity is reported.
        min_hit_radius_mm: the smallest hit radius.

    Returns:
        The FROC result.

    Raises:
        ValueError: no scans or no reference nodules, or predictions for a scan that has no
            reference entry.
    """
    unknown = sorted(set(predictions) - set(references))
    if unknown:
        raise ValueError(f"predictions for scans without a reference: {', '.join(unknown)}")
    if not references:
        raise ValueError("no reference scans given")
    total_references = sum(len(nodules) for nodules in references.values())
    if total_references == 0:
        raise ValueError("the reference holds no nodules; FROC sensitivity is undefined")

    detection_scores: list[float] = []  # per reference nodule (-inf if missed)
    false_positive_scores: list[float] = []
    per_scan: dict[str, dict[str, int]] = {}
    for scan, nodules in references.items():
        findings = list(predictions.get(scan, ()))
        scores, false_positives = _match_scan(findings, nodules, min_hit_radius_mm)
        detection_scores += scores
        false_positive_scores += false_positives
        per_scan[scan] = {
            "references": len(nodules),
            "predictions": len(findings),
            "detected": int(np.isfinite(scores).sum()) if scores else 0,
            "false_positives": len(false_positives),
        }

    detections = np.asarray(detection_scores, dtype=float)
    false_positives = np.asarray(false_positive_scores, dtype=float)
    scans = len(references)
    thresholds = np.unique(np.concatenate([detections[np.isfinite(detections)], false_positives]))[::-1]
    sensitivity = [float((detections >= t).sum() / total_references) for t in thresholds]
    fp_per_scan = [float((false_positives >= t).sum() / scans) for t in thresholds]
    sensitivity_at = {float(rate): _sensitivity_at(rate, fp_per_scan, sensitivity) for rate in fp_rates}
    return FrocResult(
        thresholds=[float(t) for t in thresholds],
        sensitivity=sensitivity,
        fp_per_scan=fp_per_scan,
        sensitivity_at=sensitivity_at,
        cpm=float(np.mean(list(sensitivity_at.values()))),
        scans=scans,
        references=total_references,
        predictions=sum(len(v) for v in predictions.values()),
        detected=int(np.isfinite(detections).sum()),
        false_positives=len(false_positives),
        per_scan=per_scan,
    )


def is_hit(
    finding: PredictedFinding, nodule: ReferenceNodule, min_hit_radius_mm: float = MIN_HIT_RADIUS_MM
) -> bool:
    """True if the finding's centre lies within ``max(radius, min_hit_radius_mm)`` of the nodule's."""
    radius = max(nodule.diameter_mm / 2.0, min_hit_radius_mm)
    return float(np.linalg.norm(np.subtract(finding.center, nodule.center))) <= radius


def _match_scan(
    findings: Sequence[PredictedFinding], nodules: Sequence[ReferenceNodule], min_hit_radius_mm: float
) -> tuple[list[float], list[float]]:
    """Per-nodule detection scores (``-inf`` = missed) and the false-positive scores of one scan."""
    detection = [-np.inf] * len(nodules)
    false_positives = []
    for finding in findings:
        hits = [n for n, nodule in enumerate(nodules) if is_hit(finding, nodule, min_hit_radius_mm)]
        if not hits:
            false_positives.append(float(finding.score))
        for n in hits:
            detection[n] = max(detection[n], float(finding.score))
    return detection, false_positives


def _sensitivity_at(rate: float, fp_per_scan: Sequence[float], sensitivity: Sequence[float]) -> float:
    """Highest sensitivity with at most ``rate`` false positives per scan (0 if none)."""
    reachable = [s for f, s in zip(fp_per_scan, sensitivity) if f <= rate + 1e-12]
    return max(reachable, default=0.0)
