"""Lung and airway borders at the input resolution.

The network and its clean-up run on the model grid (isotropic, e.g. 2 mm), and the label
map reaches the input grid by nearest-neighbour resampling, so a lung border lies up to a
model voxel off the pleura, with stair steps a model voxel high. :func:`refine_label_borders`
moves the borders of the lung (and airway) labels onto the image, on the input grid, in a
thin band around them:

- **threshold**: a band voxel is air-filled (lung or airway lumen) when its HU is below
  :data:`LUNG_THRESHOLD_HU` (-500), the half-way value between aerated parenchyma (about
  -850) and soft tissue or fat (-100 to +40) that classical lung segmentation thresholds at.
  For a partial-volume voxel this puts the border where the voxel is more than about half
  air, i.e. within about half a voxel of the true surface.
- **band**: ``radius`` voxels per array axis, about one model-grid voxel
  (:func:`band_radius`), at least one. The band is a box: a voxel is in it when it lies
  within ``radius[a]`` voxels along every axis ``a`` of the label (Chebyshev distance in
  band units).
- **shrink**: the dense (not air-filled) voxels of a refined label within the band of its
  background border are peeled off from the outside: those connected to the background
  through such voxels (6-neighbours; at most ``radius[0]`` steps across slices) become
  background. A voxel deeper than the band is kept whatever its HU (vessels, nodules, dense
  lung), and so is a dense band voxel that aerated lung encloses (a vessel under the
  pleura): the refinement makes no holes. Borders with another label (lung against airway
  or nodule, left lung against right lung) are not borders to background, so they do not
  move.
- **grow**: from the label's kept voxels, a region growing, one box step (26-neighbours) a
  round, through unlabelled air-filled voxels only, each axis ``a`` stepping in only its
  first ``radius[a]`` rounds: so an added voxel is connected to the label it joins through
  air, and never further than the band from that label's original voxels. All refined
  labels grow at once: a voxel reached first by one label goes to it (the nearer one), a
  voxel reached by two labels in the same round goes to neither, so the left and right
  lungs never take each other's voxels nor cross a soft-tissue wall. Voxels of other
  labels (nodules, or anything not refined) and of other refined labels are never taken.
- **specks**: a band voxel of a refined label left without a 26-neighbour of its own label
  (an air-filled voxel the peeling cut off) becomes background.

Air outside the body is never reached: postprocessing drops lung voxels within 4 mm of it
(:data:`~.postprocess.EXTERIOR_MARGIN_MM`), and the band only reaches about one model voxel
beyond the label, through air connected to it.

Memory: the map is refined in slabs of :data:`SLAB_SLICES` slices (plus a halo of
``2 * radius[0] + 1`` slices each side, so each slab's result equals a whole-volume
refinement), each cropped in-plane to the refined labels it holds; the changes are
collected as indices and written at the end, so each slab reads the original labels.
Peak extra memory is a few ``uint8``/``bool`` copies of one slab (about 100 MB for a
512 x 512 x 600 volume), whatever the volume's length.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from ..models.card import ModelCard

LUNG_THRESHOLD_HU = -500.0
"""Below this (HU) a band voxel is air-filled: half-way between aerated lung and soft tissue."""

REFINED_NAMES = ("left lung", "right lung", "lung", "airway", "trachea")
"""Card label names whose borders are refined (lungs, and the central airway, also air-filled)."""

MIN_BAND_VOXELS = 1
"""The band is at least this many input voxels along every axis."""

SLAB_SLICES = 32
"""Slices refined at once (memory per slab; the result does not depend on it)."""

Radius = tuple[int, int, int]


@dataclass(frozen=True)
class BorderChanges:
    """What :func:`refine_label_borders` changed: voxels added to and removed from the refined labels."""

    added: int = 0
    removed: int = 0


def refined_label_values(card: ModelCard) -> tuple[int, ...]:
    """The values of the card's labels named in :data:`REFINED_NAMES` (lungs, airway)."""
    return tuple(label.value for label in card.labels if label.name.strip().lower() in REFINED_NAMES)


def band_radius(input_spacing: Sequence[float], model_spacing: Sequence[float]) -> Radius:
    """The band half-width in input voxels per array axis ``(k, j, i)``: one model voxel.

    Args:
        input_spacing: the input grid's ``(x, y, z)`` spacing (mm), i.e. along ``i, j, k``.
        model_spacing: the model grid's spacing (mm); its largest value is the band width.

    Returns:
        ``(rk, rj, ri)``, each at least :data:`MIN_BAND_VOXELS`.
    """
    band_mm = float(max(model_spacing))
    x, y, z = (float(s) for s in input_spacing)
    return tuple(max(MIN_BAND_VOXELS, round(band_mm / s)) for s in (z, y, x))  # type: ignore[return-value]


def refine_label_borders(
    labels: np.ndarray,
    hu: np.ndarray,
    values: Iterable[int],
    radius: Radius,
    threshold: float = LUNG_THRESHOLD_HU,
    slab_slices: int = SLAB_SLICES,
) -> BorderChanges:
    """Move the borders of the labels ``values`` onto the image, in place (see the module docstring).

    Args:
        labels: ``uint8`` ``[k, j, i]`` label map on the input grid; modified in place.
        hu: the CT on the same grid (HU), any numeric type.
        values: the label values to refine (e.g. :func:`refined_label_values`).
        radius: band half-width in voxels along ``(k, j, i)`` (e.g. :func:`band_radius`).
        threshold: HU below which a voxel is air-filled.
        slab_slices: slices per slab (memory only).

    Returns:
        The voxel counts added and removed.
    """
    if labels.shape != hu.shape:
        raise ValueError(f"labels {labels.shape} and image {hu.shape} are not on the same grid")
    radius = tuple(max(MIN_BAND_VOXELS, int(r)) for r in radius)  # type: ignore[assignment]
    refined_lut = np.zeros(256, dtype=bool)
    refined_lut[[int(v) for v in values]] = True
    if not refined_lut.any():
        return BorderChanges()
    rk, rj, ri = radius
    halo = 2 * rk + 1
    slices = labels.shape[0]
    changes: list[tuple[tuple[slice, slice, slice], np.ndarray, np.ndarray]] = []
    for start in range(0, slices, max(1, slab_slices)):
        stop = min(slices, start + slab_slices)
        low, high = max(0, start - halo), min(slices, stop + halo)
        refined = refined_lut[labels[low:high]]
        rows = np.flatnonzero(refined.any(axis=(0, 2)))
        if rows.size == 0:
            continue
        columns = np.flatnonzero(refined.any(axis=(0, 1)))
        del refined
        j0, j1 = max(0, rows[0] - 2 * rj - 1), min(labels.shape[1], rows[-1] + 2 * rj + 2)
        i0, i1 = max(0, columns[0] - 2 * ri - 1), min(labels.shape[2], columns[-1] + 2 * ri + 2)
        block = (slice(low, high), slice(j0, j1), slice(i0, i1))
        original = labels[block]
        new = _refine_block(original, hu[block] < threshold, refined_lut, radius)
        inner = slice(start - low, stop - low)
        changed = np.flatnonzero(new[inner] != original[inner])
        if changed.size:
            target = (slice(start, stop), slice(j0, j1), slice(i0, i1))
            changes.append((target, changed.astype(np.int64), new[inner].ravel()[changed]))
    added = removed = 0
    for target, changed, new_values in changes:
        region = labels[target]
        where = np.unravel_index(changed, region.shape)
        added += int(np.count_nonzero(new_values))
        removed += int(np.count_nonzero(new_values == 0))
        region[where] = new_values
    return BorderChanges(added=added, removed=removed)


def _box_filter(values: np.ndarray, radius: Sequence[int], maximum: bool) -> np.ndarray:
    """Box maximum (dilation) or minimum (erosion) with half-width ``radius[a]`` along axis ``a``.

    Each axis runs ``radius[a]`` three-voxel steps of shifted ``np.maximum``/``np.minimum``
    (much quicker than ``scipy.ndimage`` filters for these small widths). Voxels beyond the
    array do not take part: for a maximum of non-negative values that is a zero border, for a
    minimum it is the "nearest" border (a label cut by the array's face is not eroded there).
    """
    combine = np.maximum if maximum else np.minimum
    out = values.copy()
    for axis, steps in enumerate(radius):
        for _ in range(int(steps)):
            before = [slice(None)] * values.ndim
            after = [slice(None)] * values.ndim
            before[axis], after[axis] = slice(0, -1), slice(1, None)
            source = out.copy()
            combine(out[tuple(after)], source[tuple(before)], out=out[tuple(after)])
            combine(out[tuple(before)], source[tuple(after)], out=out[tuple(before)])
    return out


def _box_sum(mask: np.ndarray) -> np.ndarray:
    """How many voxels of ``mask`` lie in each voxel's 3 x 3 x 3 box (``uint8``)."""
    out = mask.astype(np.uint8)
    for axis in range(mask.ndim):
        before = [slice(None)] * mask.ndim
        after = [slice(None)] * mask.ndim
        before[axis], after[axis] = slice(0, -1), slice(1, None)
        source = out.copy()
        out[tuple(after)] += source[tuple(before)]
        out[tuple(before)] += source[tuple(after)]
    return out


def _face_dilation(mask: np.ndarray, axes: Sequence[int]) -> np.ndarray:
    """``mask`` and its 6-neighbours along ``axes`` (voxels beyond the array do not take part)."""
    out = mask.copy()
    for axis in axes:
        before = [slice(None)] * mask.ndim
        after = [slice(None)] * mask.ndim
        before[axis], after[axis] = slice(0, -1), slice(1, None)
        out[tuple(after)] |= mask[tuple(before)]
        out[tuple(before)] |= mask[tuple(after)]
    return out


def _refine_block(labels: np.ndarray, air: np.ndarray, refined_lut: np.ndarray, radius: Radius) -> np.ndarray:
    """The refined labels of one block (``labels`` itself is not modified)."""
    labelled = labels != 0
    # Voxels deeper than the band inside the labels (other labels count as inside): kept as they are.
    interior = _box_filter(labelled, radius, maximum=False)
    refined = refined_lut[labels]
    dense = refined & ~interior & ~air
    # Peel the dense rim from the background inwards (6-neighbours): in-plane as far as it goes,
    # through-plane at most ``radius[0]`` steps (so a slab's halo holds every path); dense voxels
    # that aerated lung encloses stay.
    outside = ~labelled
    for through_plane in range(radius[0] + 1):
        while True:
            peeled = dense & _face_dilation(outside, (1, 2))
            if not peeled.any():
                break
            outside |= peeled
            dense &= ~peeled
        peeled = dense & _face_dilation(outside, (0,)) if through_plane < radius[0] else None
        if peeled is None or not peeled.any():
            break
        outside |= peeled
        dense &= ~peeled
    lose = outside & labelled
    del dense, outside
    owner = np.where(refined & ~lose, labels, 0).astype(np.uint8)
    del refined
    free = air & ~labelled
    del labelled
    for step in range(1, max(radius) + 1):
        steps = [1 if step <= r else 0 for r in radius]
        highest = _box_filter(owner, steps, maximum=True)
        reached = free & (highest > 0)
        if not reached.any():
            break
        # The lowest neighbouring owner, as 255 - the highest of (255 - owner) over owned voxels.
        flipped = np.where(owner > 0, np.uint8(255) - owner, np.uint8(0)).astype(np.uint8)
        lowest = np.uint8(255) - _box_filter(flipped, steps, maximum=True)
        del flipped
        single = reached & (highest == lowest)
        owner[single] = highest[single]
        free &= ~reached  # a voxel reached by two labels at once goes to neither and blocks both
        del highest, lowest, reached, single
    new = labels.copy()
    new[lose] = 0
    gained = (owner > 0) & (labels == 0)
    new[gained] = owner[gained]
    del owner, gained, lose
    # A band voxel the peeling left without a neighbour of its own label is dropped, not kept as a speck.
    for value in np.unique(new[refined_lut[new] & ~interior]):
        mask = new == value
        alone = mask & ~interior & (_box_sum(mask) == 1)
        new[alone] = 0
    return new
