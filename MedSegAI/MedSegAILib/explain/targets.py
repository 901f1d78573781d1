"""Segment Grad-CAM targets, and detection findings carried to the model grid.

- segment: the target region is the segment as predicted on the model grid, the target
  class is the raw network class that becomes it (``left lung`` and ``right lung`` are
  both the raw ``lung`` class, each over its own region);
- findings on the model grid (:func:`findings_on_model_grid`, for their uncertainty): each
  finding's label on the input grid, carried to the model grid by nearest neighbour; a
  finding smaller than a model voxel becomes the model voxel at its centre.

A finding's Grad-CAM explains the nodule classifier that scored it, not the segmentation
network: see :mod:`.finding_gradcam`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import SimpleITK as sitk

from ..errors import InputError
from ..inference.engine import SegmentationResult
from ..inference.postprocess import SPLIT_LUNG, class_targets
from ..inference.resample import resample_like
from ..models.card import ModelCard
from ..models.loaded import LoadedModel
from .gradcam import GradCamMap, gradcam_on_model_grid, normalised_on_input_grid


def raw_class_by_label(card: ModelCard) -> dict[int, int]:
    """For each output label value, the raw network class it comes from."""
    raw: dict[int, int] = {}
    for raw_class, target in enumerate(class_targets(card)):
        if target == SPLIT_LUNG:
            for name in ("left lung", "right lung"):
                raw[card.label(name).value] = raw_class
        elif target != 0:
            raw[int(target)] = raw_class
    return raw


def segment_gradcam(
    result: SegmentationResult, model: LoadedModel, segment: str | int, **options: Any
) -> tuple[np.ndarray, GradCamMap]:
    """Grad-CAM of one segment, on the input grid in [0, 1].

    Args:
        result: the segmentation.
        model: the model that produced it.
        segment: the segment's name or label value.
        **options: passed to :func:`~.gradcam.gradcam_on_model_grid` (``layer``, ``volume``...).

    Returns:
        ``(map on the input grid, raw model-grid map)``; all zeros when the segment is empty.

    Raises:
        InputError: the model has no such segment.
    """
    label = model.card.label(segment)
    raw = raw_class_by_label(model.card)
    if label.value not in raw:
        raise InputError(
            f"segment {label.name!r} has no network class to explain in model {model.card.name!r}"
        )
    raw_map = gradcam_on_model_grid(
        result, model, result.model_labels == label.value, raw[label.value], **options
    )
    return normalised_on_input_grid(result, raw_map.values), raw_map


def findings_on_model_grid(
    result: SegmentationResult, finding_labels: np.ndarray, centers_lps: Sequence[Sequence[float]]
) -> list[np.ndarray]:
    """Each finding's mask on the model grid (finding ``n`` has label ``n`` on the input grid)."""
    reference = result.labels.with_array(np.asarray(finding_labels, dtype=np.uint16)).to_sitk()
    on_model = sitk.GetArrayFromImage(
        resample_like(reference, result.model_grid, sitk.sitkNearestNeighbor, 0)
    )
    masks = []
    for finding_id, center in enumerate(centers_lps, start=1):
        mask = on_model == finding_id
        if not mask.any():
            i, j, k = np.round(result.model_grid.lps_to_ijk(np.asarray(center, dtype=float))).astype(int)
            if all(0 <= index < n for index, n in zip((k, j, i), mask.shape)):
                mask[k, j, i] = True
        masks.append(mask)
    return masks
