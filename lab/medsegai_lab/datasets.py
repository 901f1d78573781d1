"""The training cases: real scans with pseudo or reference labels, prepared and cached.

The data recipe of the built-in chest CT model (cases as :class:`MedSegAILib.training.cases.Case`).

Training (never evaluated on as held-out data):
- ``chest_ct_dicom``: full chest; classical lung and airway pseudo-labels, and the real
  solid mass in the right upper lung as a nodule;
- TotalSegmentator ``chest_ct_crop_a/b``: contrast chest crops; classical pseudo-labels;
- TotalSegmentator ``abdomen_ct_3mm``: lung bases from its v1 lobe labels (13..17) and
  trachea (43): teaches that bowel gas is not lung.

Validation only (see ``evaluate_model``): CIP ``ct-64`` and nodules inserted into it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from MedSegAILib.progress import ProgressCallback
from MedSegAILib.training.canonical import canonical_image, image_array, resample_onto
from MedSegAILib.training.cases import Case

from medsegai_lab.pseudo_labels import lung_pseudo_labels, solid_lung_masses

CACHE_VERSION = 1


@dataclass(frozen=True)
class Source:
    """A training scan: its path under the data folder, how to label it, how often to sample it."""

    name: str
    path: str
    labeller: str  # "pseudo", "pseudo+mass" or "totalseg_v1:<labels path>"
    weight: float
    cropped: bool = False


TRAINING_SOURCES = (
    Source("chest_ct_dicom", "chest_ct_dicom", "pseudo+mass", 0.4),
    Source("chest_ct_crop_a", "totalsegmentator/chest_ct_crop_a_1p5mm.nii.gz", "pseudo", 0.2, cropped=True),
    Source("chest_ct_crop_b", "totalsegmentator/chest_ct_crop_b_1p5mm.nii.gz", "pseudo", 0.2, cropped=True),
    Source(
        "abdomen_ct_3mm",
        "totalsegmentator/abdomen_ct_3mm.nii.gz",
        "totalseg_v1:totalsegmentator/abdomen_ct_3mm_totalseg_v1_labels.nii.gz",
        0.2,
    ),
)
TOTALSEG_V1_LUNG = (13, 14, 15, 16, 17)
TOTALSEG_V1_TRACHEA = 43


def pseudo_label_classes(hu: np.ndarray, spacing: Sequence[float], with_masses: bool) -> np.ndarray:
    """Network classes from the classical pipeline (lung, airway, optionally real masses as nodules)."""
    labels = lung_pseudo_labels(hu, spacing)
    out = np.zeros(hu.shape, dtype=np.uint8)
    out[labels.lung] = 1
    out[labels.airway] = 3
    if with_masses:
        out[solid_lung_masses(hu, labels.lung, spacing)] = 2
    return out


def prepare_case(source: Source, data_dir: Path, spacing: Sequence[float]) -> Case:
    """Load, orient, resample and label one source scan."""
    image = canonical_image(data_dir / source.path, spacing)
    hu = image_array(image)
    if source.labeller.startswith("totalseg_v1:"):
        reference = canonical_image(data_dir / source.labeller.split(":", 1)[1], None, label=True)
        classes = image_array(resample_onto(reference, image, label=True)).astype(np.int32)
        label = np.zeros(hu.shape, dtype=np.uint8)
        label[np.isin(classes, TOTALSEG_V1_LUNG)] = 1
        label[classes == TOTALSEG_V1_TRACHEA] = 3
    else:
        label = pseudo_label_classes(hu, spacing, with_masses=source.labeller == "pseudo+mass")
    return Case(
        source.name,
        np.clip(np.round(hu), -1024, 3071).astype(np.int16),
        label,
        tuple(float(s) for s in spacing),
        source.weight,
        source.cropped,
    )


def load_training_cases(
    data_dir: str | os.PathLike,
    spacing: Sequence[float],
    cache_dir: str | os.PathLike,
    sources: Sequence[Source] = TRAINING_SOURCES,
    progress: ProgressCallback | Callable[[float, str], None] | None = None,
) -> list[Case]:
    """Prepared training cases, read from ``cache_dir`` or built there on first use.

    Args:
        data_dir: the shared data folder (``../shared/data``).
        spacing: model spacing (x, y, z) mm.
        cache_dir: where prepared cases are kept (``.cache/training``).
        sources: which scans.
        progress: optional ``(fraction, message)`` callback.

    Returns:
        One :class:`Case` per source.
    """
    data_dir, cache_dir = Path(data_dir), Path(cache_dir)
    tag = "x".join(f"{s:g}" for s in spacing)
    folder = cache_dir / f"v{CACHE_VERSION}_spacing_{tag}"
    folder.mkdir(parents=True, exist_ok=True)
    cases = []
    for index, source in enumerate(sources):
        if progress:
            progress(index / len(sources), f"preparing {source.name}")
        path = folder / f"{source.name}.npz"
        if path.is_file():
            stored = np.load(path)
            cases.append(
                Case(
                    source.name,
                    stored["hu"],
                    stored["label"],
                    tuple(float(s) for s in spacing),
                    source.weight,
                    source.cropped,
                )
            )
            continue
        case = prepare_case(source, data_dir, spacing)
        np.savez_compressed(path.with_suffix(".tmp.npz"), hu=case.hu, label=case.label)
        os.replace(path.with_suffix(".tmp.npz"), path)
        cases.append(case)
    return cases
