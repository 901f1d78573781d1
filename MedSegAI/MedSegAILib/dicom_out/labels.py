"""Segment descriptions for DICOM SEG/SR: the engine's :class:`~MedSegAILib.models.card.LabelInfo`.

``LabelInfo`` and ``read_labels_json`` live in :mod:`MedSegAILib.models.card` (one class for
the model cards, the DICOM code and the Slicer adapters); they are imported here so the
DICOM modules keep one local import.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..models.card import LabelInfo, read_labels_json

__all__ = ["LabelInfo", "labels_json", "read_labels_json"]


def labels_json(infos: Sequence[LabelInfo]) -> dict[str, Any]:
    """The ``labels.json`` document for ``infos``."""
    return {"labels": [info.to_json() for info in infos]}
