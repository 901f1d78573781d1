"""The findings as the ``lung nodule`` segment, and the lungs with and without them.

:func:`add_lesion_segment` writes every finding's voxels into the segmentation as the
``lung nodule`` label, so the segment holds exactly the objects that the findings report (the
same voxels as ``nodules.nii.gz`` > 0) and the lungs give those voxels up.
:func:`lesion_lungs` says which lung each finding belongs to, and
:func:`lungs_with_lesions` gives the label map in which each lung includes its lesions (the
lung envelope a surgeon plans on).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from ..models.card import ModelCard

LESION_SEGMENT = "lung nodule"
LUNG_SEGMENTS = ("left lung", "right lung")


@dataclass(frozen=True)
class LesionLung:
    """Where one finding lies.

    Attributes:
        finding: the finding's id (its value in ``nodules.nii.gz``).
        lung: the lung segment it belongs to, or ``None`` when the segmentation has no lungs.
        voxels: its voxel count on the input grid.
        box: its bounding box on the input grid, as ``[k, j, i]`` slices.
    """

    finding: int
    lung: str | None
    voxels: int
    box: tuple[slice, ...]


def lesion_label_value(card: ModelCard) -> int | None:
    """The label value of the model's ``lung nodule`` segment, or ``None`` if it has none."""
    for label in card.labels:
        if label.name.lower() == LESION_SEGMENT:
            return label.value
    return None


def lung_label_values(card: ModelCard) -> dict[str, int]:
    """``{"left lung": value, "right lung": value}`` for the lungs the model segments."""
    return {label.name.lower(): label.value for label in card.labels if label.name.lower() in LUNG_SEGMENTS}


def add_lesion_segment(labels: np.ndarray, findings: np.ndarray, lesion_value: int) -> None:
    """Make ``lesion_value`` in ``labels`` (in place) exactly the voxels of ``findings`` > 0.

    Voxels that the network itself labelled as a lesion but no finding holds become
    background: the segment and the findings then describe the same objects.

    Args:
        labels: the segmentation label map on the input grid.
        findings: the findings' label map (value = finding id) on the same grid.
        lesion_value: the ``lung nodule`` label value.

    Raises:
        ValueError: the two maps are not on the same grid.
    """
    if labels.shape != findings.shape:
        raise ValueError(f"findings map {findings.shape} is not on the segmentation grid {labels.shape}")
    labels[labels == lesion_value] = 0
    labels[findings > 0] = lesion_value


def lesion_lungs(labels: np.ndarray, findings: np.ndarray, lungs: dict[str, int]) -> list[LesionLung]:
    """The lung each finding belongs to: the lung label most common around its outline.

    A finding with no lung voxel around it (a mass that fills the lung locally) goes to the lung
    whose centre lies nearest along the patient's left-right array axis.

    Args:
        labels: the segmentation label map (lungs without lesions).
        findings: the findings' label map (value = finding id).
        lungs: ``{lung name: label value}`` (:func:`lung_label_values`).
    """
    boxes = ndimage.find_objects(findings)
    centres: dict[str, float] | None = None  # computed only for a lesion with no lung around it
    result = []
    for index, box in enumerate(boxes):
        if box is None:
            continue
        finding = index + 1
        padded = tuple(slice(max(s.start - 1, 0), s.stop + 1) for s in box)
        own = findings[padded] == finding
        shell = ndimage.binary_dilation(own, iterations=1) & ~own
        around = labels[padded][shell]
        counts = {name: int(np.count_nonzero(around == value)) for name, value in lungs.items()}
        lung: str | None = max(counts, key=counts.__getitem__) if counts and max(counts.values()) else None
        if lung is None and centres is None:
            columns = {name: _centre_column(labels, value) for name, value in lungs.items()}
            centres = {name: column for name, column in columns.items() if column is not None}
        if lung is None and centres:
            column = float(np.mean(np.nonzero(own)[2])) + padded[2].start
            lung = min(centres, key=lambda name: abs(centres[name] - column))
        result.append(LesionLung(finding, lung, int(own.sum()), box))
    return result


def lungs_with_lesions(
    labels: np.ndarray, findings: np.ndarray, placement: list[LesionLung], lungs: dict[str, int]
) -> np.ndarray:
    """A copy of ``labels`` in which each finding's voxels carry the label of its lung."""
    envelope = labels.copy()
    for lesion in placement:
        if lesion.lung is not None:
            box = lesion.box
            envelope[box][findings[box] == lesion.finding] = lungs[lesion.lung]
    return envelope


def _centre_column(labels: np.ndarray, value: int) -> float | None:
    """Mean array column (the ``i`` index) of ``value``'s voxels, or ``None`` if it has none."""
    counts = np.count_nonzero(labels == value, axis=(0, 1))
    total = counts.sum()
    return float((counts * np.arange(counts.size)).sum() / total) if total else None
