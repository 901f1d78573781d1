"""Segmentation and nodule detection from one forward pass of the segmentation network.

:func:`segment_and_detect` runs :func:`~MedSegAILib.inference.engine.segment_volume` once
and detects nodules in the lungs it found, on the model-grid CT it already resampled;
:func:`detect_from_segmentation` detects on a segmentation that was already computed (the
Slicer module after `segment`).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from ..errors import InputError
from ..inference.engine import SegmentationResult, segment_volume
from ..io.volume import Volume
from ..models.card import ModelCard
from ..models.loaded import LoadedModel
from ..progress import CancelToken, ProgressCallback, no_progress, sub_progress
from .detector import DEFAULT_THRESHOLD, DetectionResult, detect_nodules
from .nodule_scorer import NoduleScorer, scorer_for_model

LUNG_CLASSES = ("lung", "left lung", "right lung")
SEGMENTATION_END = 0.9


def detect_from_segmentation(
    result: SegmentationResult,
    volume: Volume,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    scorer: NoduleScorer | None = None,
    card: ModelCard | None = None,
    progress: ProgressCallback = no_progress,
    cancel: CancelToken | None = None,
) -> DetectionResult:
    """Detect nodules in the lungs of an existing segmentation (no segmentation network run).

    Args:
        result: the output of ``segment_volume`` for ``volume``.
        volume: the input CT (HU) that was segmented.
        threshold: report findings with ``score >= threshold``.
        scorer: candidate scorer; default: the one shipped with ``card``'s model, else the
            built-in one (:func:`~.nodule_scorer.scorer_for_model`).
        card: the card of the model that produced ``result``.
        progress: ``(fraction, message)`` callback.
        cancel: checked between stages and findings.

    Returns:
        The findings and their label map on ``volume``'s grid.

    Raises:
        InputError: the model segments no lungs.
    """
    scorer = scorer or scorer_for_model(card)
    return detect_nodules(
        result.model_grid,
        lung_region(result),
        volume,
        scorer,
        threshold=threshold,
        progress=progress,
        cancel=cancel,
    )


def lung_region(result: SegmentationResult) -> np.ndarray:
    """Model-grid voxels whose most likely class is a lung (a tie goes to the other class).

    Raises:
        InputError: the model has no lung class.
    """
    names = [name.lower() for name in result.class_names]
    wanted = [index for index, name in enumerate(names) if name in LUNG_CLASSES]
    if not wanted:
        raise InputError(
            f"nodule detection looks inside the lungs, but the model segments no lungs (it has "
            f"{', '.join(result.class_names)}); use a chest CT model with a lung class"
        )
    others = [index for index in range(len(names)) if index not in wanted]
    lung = np.max(
        result.probabilities[wanted], axis=0
    )  # channel-wise maxima: far cheaper than argmax over axis 0
    if not others:
        return np.ones(lung.shape, dtype=bool)
    return lung > np.max(result.probabilities[others], axis=0)


def segment_and_detect(
    volume: Volume,
    model: LoadedModel,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    scorer: NoduleScorer | None = None,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
    **segment_options: Any,
) -> tuple[SegmentationResult, DetectionResult]:
    """Segment ``volume`` and detect nodules, running the network once.

    Args:
        volume: a CT in HU.
        model: a loaded segmentation model with a lung class.
        threshold: report findings with ``score >= threshold``.
        scorer: candidate scorer; default: :func:`~.nodule_scorer.scorer_for_model`.
        progress: ``(fraction, message)`` callback over both stages.
        cancel: checked between stages, windows and candidates.
        **segment_options: passed to ``segment_volume`` (``fast``, ``threads``, ``keep_features``...).

    Returns:
        ``(segmentation, detection)``; the segmentation's ``timings`` gain a ``detect`` entry.
    """
    progress = progress or no_progress
    segmentation = segment_volume(
        volume,
        model,
        progress=sub_progress(progress, 0.0, SEGMENTATION_END),
        cancel=cancel,
        **segment_options,
    )
    started = time.perf_counter()
    detection = detect_from_segmentation(
        segmentation,
        volume,
        threshold=threshold,
        scorer=scorer,
        card=model.card,
        progress=sub_progress(progress, SEGMENTATION_END, 1.0),
        cancel=cancel,
    )
    segmentation.timings["detect"] = time.perf_counter() - started
    return segmentation, detection
