"""The lesions in a `segment` job: when they are found, how they enter the segmentation, and
what `segment` reports about them (``volumes.json``, the lungs' surfaces with their lesions).

With a model that segments the lungs and has a ``lung nodule`` segment (the built-in chest CT
model), `segment` detects by default: the findings become that segment (see
:mod:`~MedSegAILib.detection.lesion_segment`), ``findings.json`` and ``nodules.nii.gz`` are
written beside it, and the lungs are reported both without their lesions (the segments) and
with them (the lung envelope a surgeon plans on).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..detection.detector import DetectionResult
from ..detection.lesion_segment import (
    LesionLung,
    add_lesion_segment,
    lesion_label_value,
    lesion_lungs,
    lung_label_values,
    lungs_with_lesions,
)
from ..errors import InputError
from ..inference.segment_volumes import segment_volumes
from ..io.volume import Volume
from ..mesh import MeshOptions
from ..mesh.export import export_label_meshes, write_meshes_json
from ..models.card import ModelCard
from ..progress import CancelToken, ProgressCallback

WITH_LESIONS = " with lesions"
"""Suffix of the surfaces of the lungs that include their lesions (``left lung with lesions``)."""

ENVELOPE_HOLES_MM3 = 1000.0
"""The lungs-with-lesions surfaces fill enclosed gaps up to this volume (the slivers of background
between a lesion's outline and the lung around it), so the envelope has no inner shells."""


@dataclass
class SegmentLesions:
    """The findings as they stand in the segmentation.

    Attributes:
        value: the ``lung nodule`` label value, which now holds exactly the findings' voxels.
        lungs: ``{lung name: label value}``.
        placement: the lung of each finding.
        with_lesions: the label map in which each lung includes its lesions.
    """

    value: int
    lungs: dict[str, int]
    placement: list[LesionLung]
    with_lesions: np.ndarray


def finds_lesions(detect: bool | None, card: ModelCard) -> bool:
    """Whether `segment` detects: as asked, else (``None``) when the model has lungs and a
    ``lung nodule`` segment.

    Raises:
        InputError: detection is asked of a model that segments no lungs.
    """
    has_lungs = bool(lung_label_values(card)) or any(label.name.lower() == "lung" for label in card.labels)
    if detect is None:
        return has_lungs and lesion_label_value(card) is not None
    if detect and not has_lungs:
        raise InputError(
            f"--detect: model {card.name!r} segments no lungs, and nodules are looked for inside them; "
            "run without --detect or use a chest CT model"
        )
    return detect


def put_lesions_in_segmentation(
    labels: np.ndarray, detection: DetectionResult, card: ModelCard
) -> SegmentLesions | None:
    """Write the findings into ``labels`` (in place) as the ``lung nodule`` segment.

    Returns ``None`` (and leaves ``labels`` alone) when the model has no ``lung nodule`` segment.
    """
    value = lesion_label_value(card)
    if value is None:
        return None
    add_lesion_segment(labels, detection.labels, value)
    lungs = lung_label_values(card)
    placement = lesion_lungs(labels, detection.labels, lungs)
    return SegmentLesions(
        value, lungs, placement, lungs_with_lesions(labels, detection.labels, placement, lungs)
    )


def volumes_json(labels: np.ndarray, volume: Volume, card: ModelCard, lesions: SegmentLesions | None) -> dict:
    """The contents of ``volumes.json``: each segment's volume, the lungs also with their lesions,
    and each lesion's lung and volume."""
    voxel_mm3 = float(np.prod(volume.spacing))
    with_lesions = lesions.with_lesions if lesions is not None else None
    lung_values = tuple(lesions.lungs.values()) if lesions is not None else ()
    document: dict[str, Any] = {
        "units": "mL",
        "segments": segment_volumes(labels, voxel_mm3, card, with_lesions, lung_values),
    }
    if lesions is not None:
        document["lesions"] = [_lesion_json(lesion, voxel_mm3) for lesion in lesions.placement]
    return document


def export_meshes(
    labels: np.ndarray,
    volume: Volume,
    card: ModelCard,
    lesions: SegmentLesions | None,
    out_dir: Path,
    progress: ProgressCallback,
    cancel: CancelToken | None,
) -> None:
    """One closed surface per segment, plus (when there are lesions) each lung with its lesions
    (``<lung>_with_lesions.stl``); ``meshes.json`` reports them all and lists each lesion."""
    options = MeshOptions()
    names = {label.value: (label.name, label.color) for label in card.labels}
    reports = export_label_meshes(labels, volume, names, out_dir, options, progress=progress, cancel=cancel)
    extra: dict[str, Any] = {}
    if lesions is not None:
        voxel_mm3 = float(np.prod(volume.spacing))
        extra["lesions"] = [_lesion_json(lesion, voxel_mm3) for lesion in lesions.placement]
        if lesions.placement:
            envelope = np.where(
                np.isin(lesions.with_lesions, list(lesions.lungs.values())), lesions.with_lesions, 0
            )
            envelope_names = {
                value: (name + WITH_LESIONS, names[value][1]) for name, value in lesions.lungs.items()
            }
            envelope_options = dataclasses.replace(options, fill_holes_mm3=ENVELOPE_HOLES_MM3)
            reports += export_label_meshes(
                envelope, volume, envelope_names, out_dir, envelope_options, cancel=cancel
            )
    write_meshes_json(out_dir, options, reports, extra)


def _lesion_json(lesion: LesionLung, voxel_mm3: float) -> dict[str, Any]:
    return {
        "finding": lesion.finding,
        "lung": lesion.lung,
        "volume_ml": round(lesion.voxels * voxel_mm3 / 1000.0, 2),
    }
