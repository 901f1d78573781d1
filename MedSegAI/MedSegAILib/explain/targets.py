"""Grad-CAM targets (a segment, detection findings) and the maps the commands write.

- segment: the target region is the segment as predicted on the model grid, the target
  class is the raw network class that becomes it (``left lung`` and ``right lung`` are
  both the raw ``lung`` class, each over its own region);
- findings: each finding's component (its label on the input grid, carried to the model
  grid by nearest neighbour; a finding smaller than a model voxel becomes the model voxel
  at its centre), target class ``lung nodule``. Each finding's map is divided by its own
  maximum and the maps are combined by their voxel-wise maximum, so that every finding
  shows, whatever its score.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import SimpleITK as sitk

from ..errors import InputError
from ..inference.engine import SegmentationResult
from ..inference.postprocess import SPLIT_LUNG, class_targets
from ..inference.resample import resample_like
from ..models.card import ModelCard
from ..models.registry import LoadedModel
from .gradcam import GradCamMap, gradcam_on_model_grid, normalised_on_input_grid

NODULE_CLASS = "lung nodule"


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


def segment_gradcam(result: SegmentationResult, model: LoadedModel, segment: str | int, **options: Any) -> tuple[np.ndarray, GradCamMap]:
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
        raise InputError(f"segment {label.name!r} has no network class to explain in model {model.card.name!r}")
    raw_map = gradcam_on_model_grid(result, model, result.model_labels == label.value, raw[label.value], **options)
    return normalised_on_input_grid(result, raw_map.values), raw_map


def findings_on_model_grid(result: SegmentationResult, finding_labels: np.ndarray, centers_lps: Sequence[Sequence[float]]) -> list[np.ndarray]:
    """Each finding's mask on the model grid (finding ``n`` has label ``n`` on the input grid)."""
    reference = result.labels.with_array(np.asarray(finding_labels, dtype=np.uint16)).to_sitk()
    on_model = sitk.GetArrayFromImage(resample_like(reference, result.model_grid, sitk.sitkNearestNeighbor, 0))
    masks = []
    for finding_id, center in enumerate(centers_lps, start=1):
        mask = on_model == finding_id
        if not mask.any():
            i, j, k = np.round(result.model_grid.lps_to_ijk(np.asarray(center, dtype=float))).astype(int)
            if all(0 <= index < n for index, n in zip((k, j, i), mask.shape)):
                mask[k, j, i] = True
        masks.append(mask)
    return masks


def findings_gradcam(result: SegmentationResult, model: LoadedModel, finding_labels: np.ndarray,
                     centers_lps: Sequence[Sequence[float]], **options: Any) -> tuple[np.ndarray, list[GradCamMap]]:
    """One Grad-CAM map for all findings, on the input grid in [0, 1].

    Args:
        result: the segmentation the findings were detected on.
        model: the model that produced it.
        finding_labels: the findings' label map on the input grid (value = finding id, 1..n).
        centers_lps: each finding's centre (LPS mm), in id order.
        **options: passed to :func:`~.gradcam.gradcam_on_model_grid`.

    Returns:
        ``(map on the input grid, raw model-grid map per finding)``.

    Raises:
        InputError: the model has no ``lung nodule`` class.
    """
    names = [name.lower() for name in result.class_names]
    if NODULE_CLASS not in names:
        raise InputError(f"the model has no {NODULE_CLASS!r} class to explain findings with; use a chest CT model with nodules")
    combined = np.zeros(result.model_labels.shape, dtype=np.float32)
    raw_maps = []
    for mask in findings_on_model_grid(result, finding_labels, centers_lps):
        raw_map = gradcam_on_model_grid(result, model, mask, names.index(NODULE_CLASS), **options)
        peak = float(raw_map.values.max())
        if peak > 0.0:
            np.maximum(combined, raw_map.values / peak, out=combined)
        raw_maps.append(raw_map)
    return normalised_on_input_grid(result, combined), raw_maps

