"""Scans with inserted nodules of known position and size, for FROC evaluation and for
training the false-positive reduction.

Nodules come from the training code's inserter (:mod:`MedSegAILib.training.synthetic_nodules`):
lobulated solid, part-solid and ground-glass balls placed isolated, juxta-pleural or
juxta-vascular inside a lung mask. Each becomes a :class:`ReferenceNodule` whose centre is the
inserted centre in LPS mm and whose diameter is the nominal one; the long axial diameter of
the inserted mask is kept too, to judge the detector's measurements.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from MedSegAILib.detection.froc import ReferenceNodule
from MedSegAILib.detection.measure import measure_component
from MedSegAILib.io.volume import Volume
from MedSegAILib.training.synthetic_nodules import NoduleSpec, insert_nodule, sample_nodule_specs
from scipy import ndimage

from medsegai_lab.pseudo_labels import lung_pseudo_labels, solid_lung_masses


@dataclass
class NoduleCase:
    """One scan with inserted nodules, and what was inserted."""

    name: str
    volume: Volume
    nodules: list[ReferenceNodule]
    measured_long_axis_mm: list[float]
    kinds: list[str]


def insert_nodules(
    name: str,
    volume: Volume,
    lung: np.ndarray,
    count: int,
    seed: int,
    diameter_range: tuple[float, float] = (6.0, 30.0),
    existing: Sequence[ReferenceNodule] | None = None,
    maps: tuple[np.ndarray, np.ndarray] | None = None,
) -> NoduleCase:
    """Insert up to ``count`` random nodules into ``volume``'s lungs.

    Args:
        name: scan id for the case.
        volume: host CT (HU); not modified.
        lung: boolean lung mask on ``volume``'s grid.
        count: nodules to try to place.
        seed: random seed (use seeds the training never used for evaluation).
        diameter_range: nominal diameters (mm), log-uniform.
        existing: real nodules already in the scan, kept in the reference.
        maps: the host's :func:`~..training.synthetic_nodules.placement_maps`, to reuse across copies.

    Returns:
        The case; nodules that would overlap an earlier one are skipped.
    """
    rng = np.random.default_rng(seed)
    spacing = volume.spacing
    specs = sample_nodule_specs(volume.array, lung, spacing, count, rng, diameter_range, maps)
    hu = volume.array.astype(np.float32)
    occupied = np.zeros(hu.shape, dtype=bool)
    nodules = list(existing or [])
    measured = [float("nan")] * len(nodules)
    kinds = ["real"] * len(nodules)
    for spec in specs:
        new_hu, mask = insert_nodule(hu, spec, spacing, rng)
        if not mask.any() or (mask & occupied).any() or _too_close(spec, volume, nodules):
            continue
        hu, occupied = new_hu, occupied | mask
        nodules.append(ReferenceNodule(tuple(volume.ijk_to_lps(spec.center[::-1])), spec.diameter_mm))
        measured.append(measure_component(mask, volume).long_axis_mm)
        kinds.append(spec.kind)
    return NoduleCase(name, volume.with_array(hu), nodules, measured, kinds)


def _too_close(spec: NoduleSpec, volume: Volume, nodules: Sequence[ReferenceNodule]) -> bool:
    """True if the new nodule would touch an earlier one (so each stays a separate target)."""
    center = volume.ijk_to_lps(spec.center[::-1])
    return any(
        np.linalg.norm(center - np.asarray(n.center)) < (spec.diameter_mm + n.diameter_mm) / 2.0 + 5.0
        for n in nodules
    )


def lungs_and_real_masses(volume: Volume) -> tuple[np.ndarray, list[ReferenceNodule]]:
    """Classical lung mask (masses included) and the real solid masses already in the scan.

    For hosts without a lung label map; ``volume`` must be in canonical LPS orientation.
    """
    lung = lung_pseudo_labels(volume.array, volume.spacing).lung
    masses = solid_lung_masses(volume.array, lung, volume.spacing)
    components, count = ndimage.label(masses)
    real = []
    for index in range(1, count + 1):
        m = measure_component(components == index, volume)
        real.append(ReferenceNodule(m.center, m.long_axis_mm))
    return lung | masses, real
