"""Segment volumes in millilitres, as `segment` writes them to ``volumes.json``."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..models.card import ModelCard


def segment_volumes(
    labels: np.ndarray,
    voxel_mm3: float,
    card: ModelCard,
    with_lesions: np.ndarray | None = None,
    lung_values: tuple[int, ...] = (),
) -> list[dict[str, Any]]:
    """One entry per card label: its value, name and volume in mL.

    Args:
        labels: the label map.
        voxel_mm3: the volume of one voxel.
        card: names the label values.
        with_lesions: the label map in which each lung holds its lesions; where given, the labels
            in ``lung_values`` also report ``volume_with_lesions_ml``.
        lung_values: the lungs' label values.
    """
    top = max([label.value for label in card.labels] + [int(labels.max(initial=0))])
    counts = np.bincount(labels.ravel(), minlength=top + 1)
    around = np.bincount(with_lesions.ravel(), minlength=top + 1) if with_lesions is not None else None
    entries = []
    for label in card.labels:
        entry: dict[str, Any] = {
            "value": label.value,
            "name": label.name,
            "volume_ml": round(float(counts[label.value]) * voxel_mm3 / 1000.0, 2),
        }
        if around is not None and label.value in lung_values:
            entry["volume_with_lesions_ml"] = round(float(around[label.value]) * voxel_mm3 / 1000.0, 2)
        entries.append(entry)
    return entries
