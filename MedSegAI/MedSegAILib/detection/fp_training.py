"""Fit the false-positive reduction scorer on candidates from training scans.

Each training example is one candidate of the detector (all candidates, no score cut-off),
labelled 1 when its centre hits a known nodule (the FROC hit criterion: inserted nodules
in training scans) and 0 otherwise (vessels, airway walls, other false candidates).
Use only scans the segmentation model was trained on, never the held-out evaluation scans.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np

from ..io.volume import Volume
from .detector import detect_nodules
from .features import FEATURE_NAMES
from .froc import PredictedFinding, ReferenceNodule, is_hit
from .scorer import LogisticScorer, ProbabilityScorer, fit_logistic


@dataclass
class CandidateSet:
    """Features (rows in :data:`FEATURE_NAMES` order) and labels of detector candidates."""

    features: list[list[float]] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)

    def add_scan(
        self,
        nodule_probability: Volume,
        image: Volume,
        nodules: Sequence[ReferenceNodule],
        region: Optional[np.ndarray] = None,
    ) -> tuple[int, int]:
        """Add every candidate of one scan; returns (true, false) candidate counts."""
        result = detect_nodules(nodule_probability, image, threshold=0.0, scorer=ProbabilityScorer(), region=region)
        true = false = 0
        for finding in result.findings:
            point = PredictedFinding(finding.measurement.center, finding.score)
            label = int(any(is_hit(point, nodule) for nodule in nodules))
            self.features.append([finding.features[name] for name in FEATURE_NAMES])
            self.labels.append(label)
            true, false = true + label, false + (1 - label)
        return true, false

    def fit(self, l2: float = 1.0) -> LogisticScorer:
        """Fit the logistic scorer on everything added.

        Raises:
            ValueError: no true or no false candidates were collected.
        """
        return fit_logistic(np.array(self.features), np.array(self.labels), FEATURE_NAMES, l2=l2)
