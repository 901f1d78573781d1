"""Lung borders at the input resolution (inference/border_refinement.py).

The labels reach the input grid by nearest-neighbour resampling from the coarser model grid;
the refinement moves the lung (and airway) borders onto the image in a band of about one
model voxel: air-filled (< -500 HU) voxels connected to a lung join it, dense band voxels
of a lung leave it, nothing else moves.
"""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
from chest_phantom import chest_phantom
from MedSegAILib.errors import InputError
from MedSegAILib.inference.border_refinement import (
    LUNG_THRESHOLD_HU,
    band_radius,
    refine_label_borders,
    refined_label_values,
)
from MedSegAILib.inference.engine import segment_volume
from MedSegAILib.io import read_volume
from MedSegAILib.models.registry import load_model, resolve_model
from scipy import ndimage

LUNG_HU, TISSUE_HU, AIR_HU = -850.0, 40.0, -1000.0
LEFT, RIGHT, NODULE, AIRWAY = 1, 2, 3, 4
FINE_MM, MODEL_MM = 0.7, 2.0
RADIUS = band_radius((FINE_MM,) * 3, (MODEL_MM,) * 3)


def overlap(length: int, low: float, high: float) -> np.ndarray:
    """Per voxel ``n`` (covering ``[n - 0.5, n + 0.5]``), the fraction inside ``[low, high]``."""
    x = np.arange(length, dtype=float)
    return np.clip(np.minimum(x + 0.5, high) - np.maximum(x - 0.5, low), 0.0, 1.0)


def nearest_from_model_grid(length: int, low: float, high: float, offset: float) -> np.ndarray:
    """A fine-grid line labelled by nearest neighbour from 2 mm model voxels inside ``[low, high]``."""
    step = MODEL_MM / FINE_MM
    centres = offset + np.round((np.arange(length) - offset) / step) * step
    return (centres >= low) & (centres <= high)


def box_lung(shape, bounds, shrink: float = 1.5, offset: float = 0.3):
    """A -850 HU box in +40 HU tissue, faces at sub-voxel positions ``bounds`` (voxel units, per
    axis), with partial volume; and its label as the engine made it before refinement: from a
    2 mm model grid, nearest neighbour, ``shrink`` voxels inside (so 0.75 to 3 voxels off)."""
    fractions = [overlap(n, low, high) for n, (low, high) in zip(shape, bounds)]
    inside = fractions[0][:, None, None] * fractions[1][None, :, None] * fractions[2][None, None, :]
    hu = (TISSUE_HU + (LUNG_HU - TISSUE_HU) * inside).astype(np.float32)
    lines = [
        nearest_from_model_grid(n, low + shrink, high - shrink, offset)
        for n, (low, high) in zip(shape, bounds)
    ]
    label = lines[0][:, None, None] & lines[1][None, :, None] & lines[2][None, None, :]
    return hu, label.astype(np.uint8)


def edge_errors(mask: np.ndarray, bounds) -> np.ndarray:
    """Label edge minus image edge (voxels), along every line across each face of the box.

    The label edge on a line is half-way between its last label voxel and the next voxel; lines
    within 4 voxels of the box's edges are left out.
    """
    errors = []
    for axis, (low, high) in enumerate(bounds):
        lines = np.moveaxis(mask, axis, -1)
        across = [b for a, b in enumerate(bounds) if a != axis]
        lines = lines[tuple(slice(int(np.ceil(lo)) + 4, int(np.floor(hi)) - 4) for lo, hi in across)]
        lines = lines.reshape(-1, lines.shape[-1])
        first = lines.argmax(axis=1)
        last = lines.shape[1] - 1 - lines[:, ::-1].argmax(axis=1)
        errors += [first - 0.5 - low, last + 0.5 - high]
    return np.concatenate(errors)


def within_band(mask: np.ndarray, radius) -> np.ndarray:
    """Voxels within ``radius[a]`` voxels along every axis of ``mask`` (the band's box)."""
    return ndimage.maximum_filter(mask.astype(np.uint8), size=[2 * r + 1 for r in radius]) > 0


def test_the_band_is_one_model_voxel_in_input_voxels_per_axis_and_at_least_one():
    assert RADIUS == (3, 3, 3)  # 2 mm / 0.7 mm
    assert band_radius((0.977, 0.977, 2.0), (2.0, 2.0, 2.0)) == (1, 2, 2)  # (k, j, i)
    assert band_radius((4.17, 4.17, 3.99), (2.0, 2.0, 2.0)) == (1, 1, 1)  # coarser than the model
    assert LUNG_THRESHOLD_HU == -500.0


def test_a_flat_border_lands_within_half_a_voxel_of_the_image_edge():
    bounds = ((8.25, 31.75), (10.5, 37.25), (9.75, 45.5))
    hu, label = box_lung((40, 48, 56), bounds)
    before = np.abs(edge_errors(label.astype(bool), bounds))
    assert before.min() >= 0.75 and before.max() >= 2.0  # the nearest-neighbour label: inside, stepped

    refine_label_borders(label, hu, (LEFT,), RADIUS)

    assert np.abs(edge_errors(label == LEFT, bounds)).max() <= 0.5


def test_a_curved_border_follows_the_image_within_about_half_a_voxel():
    shape, radius_vox, centre = (40, 48, 56), 14.0, np.array([20.3, 24.1, 28.4])
    k, j, i = np.meshgrid(*[np.arange(n) for n in shape], indexing="ij")
    sub = (np.arange(4) + 0.5) / 4 - 0.5  # 4 x 4 x 4 samples per voxel: partial volume
    inside = (
        sum(
            ((k + a - centre[0]) ** 2 + (j + b - centre[1]) ** 2 + (i + c - centre[2]) ** 2) <= radius_vox**2
            for a in sub
            for b in sub
            for c in sub
        )
        / sub.size**3
    )
    hu = (TISSUE_HU + (LUNG_HU - TISSUE_HU) * inside).astype(np.float32)
    step = MODEL_MM / FINE_MM
    ck, cj, ci = np.meshgrid(
        *[o + np.round((np.arange(n) - o) / step) * step for n, o in zip(shape, (0.3, 0.6, 0.1))],
        indexing="ij",
    )
    label = (ck - centre[0]) ** 2 + (cj - centre[1]) ** 2 + (ci - centre[2]) ** 2 <= (radius_vox - 1.4) ** 2
    label = label.astype(np.uint8)

    def errors(mask: np.ndarray) -> np.ndarray:
        """Along i, on the lines within 30 degrees of the surface normal."""
        out = []
        for kk, jj in zip(*np.nonzero(mask.any(axis=2))):
            across = (kk - centre[0]) ** 2 + (jj - centre[1]) ** 2
            if across <= (0.5 * radius_vox) ** 2:
                half, row = np.sqrt(radius_vox**2 - across), np.flatnonzero(mask[kk, jj])
                out += [row[0] - 0.5 - (centre[2] - half), row[-1] + 0.5 - (centre[2] + half)]
        return np.abs(np.array(out))

    assert errors(label).mean() > 1.0
    refine_label_borders(label, hu, (LEFT,), RADIUS)
    after = errors(label == LEFT)
    # Half a voxel of quantisation, plus where -500 HU lies between these intensities: a voxel
    # is lung when more than (40 + 500) / 890 = 0.61 of it is air, not 0.5.
    assert after.mean() < 0.3 and after.max() < 0.65


def test_left_and_right_lungs_separated_by_a_thin_wall_stay_apart():
    hu = np.full((20, 24, 40), LUNG_HU, dtype=np.float32)
    hu[:, :, 0], hu[:, :, -1], hu[:, 0], hu[:, -1] = TISSUE_HU, TISSUE_HU, TISSUE_HU, TISSUE_HU
    hu[:, :, 20] = TISSUE_HU  # a one-voxel soft-tissue wall between the lungs
    labels = np.zeros(hu.shape, dtype=np.uint8)
    labels[:, 2:-2, 2:18] = LEFT  # two voxels short of the wall, as resampled from the model grid
    labels[:, 2:-2, 23:38] = RIGHT

    refine_label_borders(labels, hu, (LEFT, RIGHT), RADIUS)

    assert not labels[:, :, 20].any()
    assert (labels[:, 1:-1, 1:20] == LEFT).all() and not (labels[:, :, 21:] == LEFT).any()
    assert (labels[:, 1:-1, 21:-1] == RIGHT).all() and not (labels[:, :, :20] == RIGHT).any()


def test_air_between_two_lungs_goes_to_the_nearer_one_and_a_tie_to_neither():
    hu = np.full((12, 12, 40), LUNG_HU, dtype=np.float32)
    labels = np.zeros(hu.shape, dtype=np.uint8)
    labels[:, :, :16] = LEFT
    labels[:, :, 21:] = RIGHT  # unlabelled air at i = 16..20

    refine_label_borders(labels, hu, (LEFT, RIGHT), RADIUS)

    assert (labels[:, :, 16:18] == LEFT).all() and (labels[:, :, 19:21] == RIGHT).all()
    assert not labels[:, :, 18].any()


def test_airway_nodule_and_other_labels_are_never_taken_or_moved():
    bounds = ((6.5, 25.5), (6.5, 33.5), (6.5, 41.5))
    hu, labels = box_lung((32, 40, 48), bounds)
    hu[:, 18:22, 22:26] = AIR_HU  # the trachea: air, labelled airway, running through the lung
    labels[:, 18:22, 22:26] = AIRWAY
    hu[14:19, 6:11, 20:25] = TISSUE_HU  # a juxtapleural nodule, labelled, at the lung's edge
    labels[14:19, 6:11, 20:25] = NODULE
    other = np.zeros(hu.shape, dtype=bool)
    other[:, 14:26, 42:44] = True  # another label's structure (value 7), in air at the lung's edge
    hu[other], labels[other] = AIR_HU, 7
    before = labels.copy()

    refine_label_borders(labels, hu, (LEFT, RIGHT), RADIUS)

    assert (labels != before).any()
    others = (before != 0) & (before != LEFT)
    assert (labels[others] == before[others]).all()
    assert set(np.unique(labels[before == LEFT])) <= {0, LEFT}  # lung voxels stay lung or leave
    # With the airway refined as well, lung and airway still never swap voxels.
    both = before.copy()
    refine_label_borders(both, hu, (LEFT, RIGHT, AIRWAY), RADIUS)
    assert set(np.unique(both[before == AIRWAY])) <= {0, AIRWAY}
    assert set(np.unique(both[before == LEFT])) <= {0, LEFT}
    assert (both[before == NODULE] == NODULE).all() and (both[other] == 7).all()


def test_nothing_is_added_beyond_the_band_nor_across_soft_tissue():
    hu = np.full((24, 40, 40), TISSUE_HU, dtype=np.float32)
    hu[2:22, 4:36, 4:30] = LUNG_HU  # the lung's air reaches 8 voxels beyond its label
    hu[2:22, 12:28, 32:36] = LUNG_HU  # an air pocket 2 voxels from the label, behind soft tissue
    labels = np.zeros(hu.shape, dtype=np.uint8)
    labels[6:18, 12:28, 12:26] = LEFT
    before = labels.copy()

    changes = refine_label_borders(labels, hu, (LEFT,), RADIUS)

    assert changes.added > 0 and changes.removed == 0
    assert (labels[within_band(before == LEFT, RADIUS) & (hu < LUNG_THRESHOLD_HU)] == LEFT).all()
    assert not (labels[~within_band(before == LEFT, RADIUS)]).any()
    assert not labels[:, :, 30:].any()  # the pocket stays background


def test_dense_voxels_leave_the_lung_only_within_the_band():
    hu = np.full((24, 40, 40), LUNG_HU, dtype=np.float32)
    hu[:, :, 30:] = TISSUE_HU
    hu[10:14, 18:22, 10:14] = TISSUE_HU  # a vessel deep inside the lung
    labels = np.zeros(hu.shape, dtype=np.uint8)
    hu[12, 20, 31] = LUNG_HU  # an air-filled voxel in the wall: once the wall is peeled, a speck
    labels[:, :, :33] = LEFT  # overshoots the chest wall by the band's 3 voxels
    deeper = labels.copy()
    deeper[:, :, 33] = LEFT  # ... or by 4: the voxel deeper than the band stays

    refine_label_borders(labels, hu, (LEFT,), RADIUS)
    refine_label_borders(deeper, hu, (LEFT,), RADIUS)

    assert (labels[:, :, :30] == LEFT).all()  # the vessel, deeper than the band, stays lung
    assert not labels[:, :, 30:].any()
    assert (deeper[:, :, :31] == LEFT).all() and deeper[12, 20, 31] == LEFT  # air touching lung stays
    assert np.count_nonzero(deeper[:, :, 31:]) == 1


def test_a_vessel_under_the_pleura_stays_lung_no_holes_are_made():
    hu = np.full((24, 40, 40), LUNG_HU, dtype=np.float32)
    hu[:, :, 30:] = TISSUE_HU
    hu[10:13, 18:21, 27:29] = TISSUE_HU  # a vessel reaching into the band (i >= 29), lung around it
    hu[10:13, 24:27, 28:32] = TISSUE_HU  # one that runs into the wall
    labels = np.zeros(hu.shape, dtype=np.uint8)
    labels[:, :, :32] = LEFT

    refine_label_borders(labels, hu, (LEFT,), RADIUS)

    assert (labels[10:13, 18:21, 27:29] == LEFT).all()
    assert (labels[:, :, :30] == 0).sum() == 9  # only the second vessel's voxels at i = 29 left the lung
    assert not labels[10:13, 24:27, 29:32].any() and not labels[:, :, 30:].any()  # its part in the band


def test_the_result_does_not_depend_on_the_slab_size():
    bounds = ((3.25, 36.75), (10.5, 37.25), (9.75, 45.5))
    hu, labels = box_lung((40, 48, 56), bounds)
    labels[:, :, 28:] *= RIGHT
    hu[::7, 20:30, 27:29] = TISSUE_HU
    whole, slabs = labels.copy(), labels.copy()
    refine_label_borders(whole, hu, (LEFT, RIGHT), RADIUS, slab_slices=1000)
    refine_label_borders(slabs, hu, (LEFT, RIGHT), RADIUS, slab_slices=5)
    assert (whole == slabs).all() and (whole != labels).any()


@pytest.fixture(scope="module")
def shipped_model():
    try:
        return load_model(resolve_model(None), "cpu")
    except InputError:
        pytest.skip("needs the shipped chest_ct model in MedSegAILib/models/builtin/chest_ct")


def test_the_shipped_model_refines_the_lungs_and_airway(shipped_model):
    values = refined_label_values(shipped_model.card)
    names = {label.value: label.name for label in shipped_model.card.labels}
    assert sorted(names[v] for v in values) == ["airway", "left lung", "right lung"]


def test_segment_volume_keeps_the_labels_away_from_the_borders_and_moves_the_borders_onto_the_lungs(
    shipped_model,
):
    volume = chest_phantom(spacing=(1.5, 1.5, 2.5))
    plain = segment_volume(volume, shipped_model, refine_borders=False)
    refined = segment_volume(volume, shipped_model)

    assert set(refined.timings) == {"preprocess", "inference", "postprocess"}
    assert (refined.model_labels == plain.model_labels).all()
    radius = band_radius(volume.spacing, plain.model_grid.spacing)
    before, after = plain.labels.array, refined.labels.array
    away = np.zeros(before.shape, dtype=bool)
    for value in np.unique(before):
        # Voxels whose whole band box holds one label (inside a lung, or far from any) stay as they are.
        away |= ndimage.minimum_filter((before == value).astype(np.uint8), [2 * r + 1 for r in radius]) > 0
    assert (after[away] == before[away]).all() and (after != before).any()
    truth = volume.array == LUNG_HU
    for labels in (before, after):
        assert np.isin(labels[truth], (LEFT, RIGHT)).mean() > 0.8
    lung_before, lung_after = np.isin(before, (LEFT, RIGHT)), np.isin(after, (LEFT, RIGHT))
    assert (lung_after & ~truth).sum() <= (lung_before & ~truth).sum()
    assert (truth & ~lung_after).sum() < 0.5 * (truth & ~lung_before).sum()


@pytest.mark.shared_data
def test_whole_lung_dice_on_cip_ct64_does_not_drop(shared_data, shipped_model):
    volume = read_volume(shared_data("cip_lung_ct/ct-64.nrrd"))
    region = sitk.GetArrayFromImage(sitk.ReadImage(str(shared_data("cip_lung_ct/lm-64.nrrd")))) & 255
    truth = (region >= 1) & (region <= 14)

    plain = segment_volume(volume, shipped_model, refine_borders=False)
    refined = plain.labels.array.copy()  # what segment_volume does by default, without a second run
    radius = band_radius(volume.spacing, plain.model_grid.spacing)
    refine_label_borders(refined, volume.array, refined_label_values(shipped_model.card), radius)

    def whole_lung_dice(labels: np.ndarray) -> float:
        lung = np.isin(labels, (1, 2, 3))  # left, right lung and nodules, as lab/medsegai_lab/evaluate_model
        return 2.0 * (lung & truth).sum() / (lung.sum() + truth.sum())

    assert whole_lung_dice(refined) >= whole_lung_dice(plain.labels.array) > 0.95
