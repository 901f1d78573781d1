"""The "needs review" rule for a segment or a finding, and its calibrated thresholds.

A region needs review when a large part of it is uncertain or when the Monte-Carlo
samples disagree about it:

    uncertain_fraction > MAX_UNCERTAIN_FRACTION  or  dice_agreement < MIN_DICE_AGREEMENT

Calibration (docs/explainability.md, ``python -m medsegai_lab.uncertainty_evaluation``):
on validation scans that were never trained on, the thresholds separate the segments
whose Dice with the reference is acceptable from those whose Dice is not.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

ENTROPY_THRESHOLD_NATS = 0.5
MAX_UNCERTAIN_FRACTION = 0.25
MIN_DICE_AGREEMENT = 0.9

REVIEW_RULE = {
    "needs_review_if": "uncertain_fraction > max_uncertain_fraction or dice_agreement < min_dice_agreement",
    "max_uncertain_fraction": MAX_UNCERTAIN_FRACTION,
    "min_dice_agreement": MIN_DICE_AGREEMENT,
    "calibration": "docs/explainability.md#needs-review",
}


def needs_review(summary: Mapping[str, Any]) -> bool:
    """Whether a region summary (``uncertain_fraction``, ``dice_agreement``) calls for review."""
    fraction, agreement = summary.get("uncertain_fraction"), summary.get("dice_agreement")
    if fraction is not None and fraction > MAX_UNCERTAIN_FRACTION:
        return True
    return agreement is not None and agreement < MIN_DICE_AGREEMENT
