"""The detector's training scans: copies of the training hosts with inserted nodules.

Hosts: chest_ct_dicom (with its real mass), TotalSegmentator chest crop a and the abdomen
scan's lung bases, each as acquired and degraded to a 4.2 x 4.2 x 4 mm grid (so coarse
screening-like scans are not a surprise). CIP ct-64 and TotalSegmentator chest crop b are
held out for evaluation (benchmarks/detect_froc.py). Copy ``r`` of host ``h`` (coarse or not)
gets nodules from seed ``1000 * (2 * h + coarse) + r``: all below the evaluation seeds (100000+).
The candidate ranker and the patch classifier train on the same copies.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import SimpleITK as sitk

from ..io.volume import Volume
from .nodule_cases import NoduleCase, insert_nodules, lungs_and_real_masses

DATA = Path(__file__).resolve().parents[3].parent / "shared" / "data"
TRAINING_HOSTS = (
    "chest_ct_dicom",
    "totalsegmentator/chest_ct_crop_a_1p5mm.nii.gz",
    "totalsegmentator/abdomen_ct_3mm.nii.gz",
)
HELD_OUT_HOSTS = ("cip_lung_ct/ct-64.nrrd", "totalsegmentator/chest_ct_crop_b_1p5mm.nii.gz")
COARSE_SPACING = (4.2, 4.2, 4.0)


@dataclass
class TrainingCopy:
    """One training scan: the case (volume on its own grid, inserted nodules and their kinds),
    its model grid, the lungs on that grid, the nodule seed and the host's index."""

    case: NoduleCase
    grid: Volume
    lungs: np.ndarray
    seed: int
    host: int


def coarsen(volume: Volume, spacing: Sequence[float] = COARSE_SPACING) -> Volume:
    """``volume`` smoothed and resampled to a coarser grid, as a low-dose screening scan looks."""
    image = volume.to_sitk()
    sigma = [max(0.0, (new ** 2 - old ** 2)) ** 0.5 / 2.355 for new, old in zip(spacing, image.GetSpacing())]
    smoothed = sitk.SmoothingRecursiveGaussian(image, sigma) if max(sigma) > 0 else image
    size = [max(1, int(round(n * old / new))) for n, old, new in zip(image.GetSize(), image.GetSpacing(), spacing)]
    resampled = sitk.Resample(smoothed, size, sitk.Transform(), sitk.sitkLinear, image.GetOrigin(), spacing,
                              image.GetDirection(), -1024.0, sitk.sitkFloat32)
    return Volume.from_sitk(resampled)


def training_copies(model, replicates: int, nodules: int, first: int = 0) -> Iterator[TrainingCopy]:
    """Copies ``first .. replicates - 1`` of every training host and variant, with up to
    ``nodules`` nodules of 4-30 mm each. Each host is segmented once; a copy's lungs are its
    host's unless the inserted nodules changed the model grid."""
    from ..inference.engine import segment_volume
    from ..inference.preprocess import prepare_input
    from ..io.reader import read_volume
    from ..training.synthetic_nodules import placement_maps
    from .pipeline import lung_region

    divisor = int(getattr(model.network, "divisor", 1))
    for host_index, host in enumerate(TRAINING_HOSTS):
        original = read_volume(DATA / host)
        for variant, volume in (("native", original), ("coarse", coarsen(original))):
            lung, real = lungs_and_real_masses(volume)
            host_lungs = lung_region(segment_volume(volume, model, threads=2))
            maps = placement_maps(volume.array, lung, volume.spacing)
            for replicate in range(first, replicates):
                seed = 1000 * (2 * host_index + (variant == "coarse")) + replicate
                case = insert_nodules(f"{host}:{variant}#{replicate}", volume, lung, nodules, seed,
                                      diameter_range=(4.0, 30.0), existing=real, maps=maps)
                grid = prepare_input(case.volume, model.card, divisor=divisor).model_grid
                lungs = host_lungs if grid.array.shape == host_lungs.shape else lung_region(segment_volume(case.volume, model, threads=2))
                yield TrainingCopy(case, grid, lungs, seed, host_index)
