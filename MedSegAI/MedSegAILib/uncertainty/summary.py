"""Per-segment and per-finding uncertainty summaries, the "needs review" rule, uncertainty.json.

Per region (computed on the model grid, where the maps are computed):

- ``mean_entropy`` / ``mean_mutual_information``: means inside the region (nats);
- ``uncertain_volume_mm3`` / ``uncertain_fraction``: the part of the region whose
  predictive entropy is above :data:`ENTROPY_THRESHOLD_NATS` (0.5 nats: no more confident
  than about 80 % / 20 % between two classes);
- ``dice_agreement`` (mean over samples) and ``dice_agreement_min``: Dice of each sample
  with the mean prediction (see :mod:`.mc_dropout`);
- ``needs_review``: see :mod:`.review`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..explain.targets import raw_class_by_label
from ..inference.engine import SegmentationResult
from ..models.card import ModelCard
from .mc_dropout import SAMPLE_BELOW, AgreementRegion, UncertaintyResult
from .review import ENTROPY_THRESHOLD_NATS, REVIEW_RULE, needs_review


def segment_regions(result: SegmentationResult, card: ModelCard) -> dict[int, AgreementRegion]:
    """One agreement region per output segment: its mask on the model grid and raw class."""
    raw_of_value = raw_class_by_label(card)
    return {
        label.value: AgreementRegion(raw_of_value[label.value], result.model_labels == label.value)
        for label in card.labels
        if label.value in raw_of_value
    }


def region_summary(
    uncertainty: UncertaintyResult, region: np.ndarray, key: object, voxel_mm3: float
) -> dict[str, Any]:
    """The summary of one region (see the module docstring); a missing region gives nulls."""
    voxels = int(np.count_nonzero(region))
    if voxels == 0:
        return {
            "volume_mm3": 0.0,
            "mean_entropy": None,
            "mean_mutual_information": None,
            "uncertain_volume_mm3": 0.0,
            "uncertain_fraction": None,
            "dice_agreement": None,
            "dice_agreement_min": None,
            "needs_review": False,
        }
    entropy = uncertainty.entropy[region]
    uncertain = int(np.count_nonzero(entropy > ENTROPY_THRESHOLD_NATS))
    dice = uncertainty.agreement.get(key)
    summary = {
        "volume_mm3": round(voxels * voxel_mm3, 1),
        "mean_entropy": round(float(entropy.mean()), 4),
        "mean_mutual_information": round(float(uncertainty.mutual_information[region].mean()), 4),
        "uncertain_volume_mm3": round(uncertain * voxel_mm3, 1),
        "uncertain_fraction": round(uncertain / voxels, 4),
        "dice_agreement": None if dice is None else round(float(dice.mean()), 4),
        "dice_agreement_min": None if dice is None else round(float(dice.min()), 4),
    }
    summary["needs_review"] = needs_review(summary)
    return summary


def uncertainty_json(
    uncertainty: UncertaintyResult,
    result: SegmentationResult,
    card: ModelCard,
    regions: Mapping[int, AgreementRegion],
    temperature: float | None = None,
) -> dict[str, Any]:
    """The contents of ``uncertainty.json``: method, thresholds and one entry per segment."""
    voxel_mm3 = float(np.prod(result.model_grid.spacing))
    segments = []
    for label in card.labels:
        region = regions.get(label.value)
        mask = region.mask if region is not None else result.model_labels == label.value
        segments.append(
            {
                "value": label.value,
                "name": label.name,
                **region_summary(uncertainty, mask, label.value, voxel_mm3),
            }
        )
    return {
        "method": "Monte-Carlo dropout: the network's dropout head sampled on its kept decoder features",
        "samples": uncertainty.samples,
        "seed": uncertainty.seed,
        "temperature": temperature,
        "units": "nats (natural logarithm)",
        "computed_on": {
            "spacing_mm": list(result.model_grid.spacing),
            "sampled_box_kji": [[part.start, part.stop] for part in uncertainty.sampled_box],
            "sampled_below_probability": SAMPLE_BELOW,
            "sampled_fraction_of_model_grid": round(uncertainty.sampled_fraction, 4),
            "not_sampled": "taken as certain: deterministic class, entropy and mutual information 0",
        },
        "entropy_threshold": ENTROPY_THRESHOLD_NATS,
        "review_rule": REVIEW_RULE,
        "needs_review": any(segment["needs_review"] for segment in segments),
        "segments": segments,
    }


def findings_uncertainty(
    uncertainty: UncertaintyResult, masks: Sequence[np.ndarray], voxel_mm3: float
) -> list[dict[str, Any]]:
    """The ``"uncertainty"`` of each finding (its component on the model grid), in id order;
    agreement keys are ``("finding", id)``."""
    return [
        region_summary(uncertainty, mask, ("finding", finding_id), voxel_mm3)
        for finding_id, mask in enumerate(masks, start=1)
    ]
