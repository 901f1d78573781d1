"""Postprocessing at model resolution: argmax, anatomical clean-up, left/right, labels.

The network's raw classes (card ``network.output_classes``) map to the card's output
labels by name; a raw ``lung`` class is split into ``left lung`` / ``right lung`` by
patient coordinates (LPS: larger x is the patient's left), never by array index.

Clean-up, where anatomy says so:

- lungs lie inside the chest wall: lung voxels within :data:`EXTERIOR_MARGIN_MM` of the air
  outside the body (per axial slice, the air below -500 HU connected to the slice's edge)
  are dropped, e.g. partial-volume voxels along the skin;
- lungs: the two largest lung components (an island smaller than
  :data:`MIN_LUNG_FRACTION` of the largest is dropped); a component lying mostly on one
  side of the body midline is assigned whole to that side, one that straddles it (lungs
  touching at the anterior junction) is split at the midline;
- ``left lung`` / ``right lung`` predicted directly, and ``airway`` / ``trachea``: the
  largest component;
- ``lung nodule``: components that touch or lie in the lungs and are at least
  :data:`MIN_NODULE_DIAMETER_MM` across (as a sphere's volume).

Removed voxels become background.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

from ..anatomy.airway import find_trachea_seed, grow_airway
from ..anatomy.body import AIR_THRESHOLD_HU, body_mask
from ..errors import InputError
from ..io.volume import Volume
from ..models.card import ModelCard

SPLIT_LUNG = "split lung"
MIN_LUNG_FRACTION = 0.05
MIN_NODULE_DIAMETER_MM = 3.0
STRADDLE_FRACTION = 0.2
EXTERIOR_MARGIN_MM = 4.0
BODY_THRESHOLD_HU = -500.0
LUNG_NAMES = ("left lung", "right lung")
LARGEST_COMPONENT_ONLY = ("left lung", "right lung", "airway", "trachea")

ClassTarget = int | str


def class_targets(card: ModelCard) -> list[ClassTarget]:
    """For each raw network class, the output label value it becomes (0 background) or
    :data:`SPLIT_LUNG`.

    Without ``network.output_classes`` raw class ``c`` is label value ``c``.

    Raises:
        InputError: a raw class has no output label in the card.
    """
    names = card.network.get("output_classes")
    by_name = {label.name.lower(): label.value for label in card.labels}
    if names is None:
        count = max(by_name.values()) + 1
        return list(range(count))
    targets: list[ClassTarget] = []
    for name in names:
        key = str(name).strip().lower()
        if key == "background":
            targets.append(0)
        elif key in by_name:
            targets.append(by_name[key])
        elif key == "lung" and all(side in by_name for side in LUNG_NAMES):
            targets.append(SPLIT_LUNG)
        else:
            raise InputError(
                f"{card.folder or card.name}: network class {name!r} has no output label in the model card; "
                "add a label with that name or fix network.output_classes"
            )
    return targets


def postprocess(probabilities: np.ndarray, grid: Volume, card: ModelCard, midline_x: float) -> np.ndarray:
    """Turn model-grid probabilities into a cleaned output label map on the same grid.

    Args:
        probabilities: softmax ``(classes, k, j, i)`` on ``grid``.
        grid: the model grid (identity direction).
        card: the model card (class names and output labels).
        midline_x: LPS x (mm) of the body midline, for the left/right split.

    Returns:
        ``uint8`` ``[k, j, i]`` label map with the card's label values.
    """
    targets = class_targets(card)
    if len(targets) != probabilities.shape[0]:
        raise InputError(
            f"{card.folder or card.name}: the network gives {probabilities.shape[0]} classes but the card "
            f"describes {len(targets)}; fix network.output_classes"
        )
    raw = np.argmax(probabilities, axis=0).astype(np.uint8)
    labels = np.zeros(raw.shape, dtype=np.uint8)
    by_name = {label.name.lower(): label.value for label in card.labels}
    for raw_class, target in enumerate(targets):
        if target == SPLIT_LUNG:
            lung = (raw == raw_class) & ~near_exterior_air(grid.array, grid.spacing)
            _assign_lungs(lung, labels, grid, midline_x, by_name["left lung"], by_name["right lung"])
    names_by_value = {value: name for name, value in by_name.items()}
    for raw_class, target in enumerate(targets):
        if target == SPLIT_LUNG or target == 0:
            continue
        mask = raw == raw_class
        name = names_by_value[int(target)]
        if name in LARGEST_COMPONENT_ONLY:
            mask = largest_components(mask, 1)
        labels[mask] = int(target)
    nodule = by_name.get("lung nodule")
    if nodule is not None:
        lung_values = [by_name[name] for name in LUNG_NAMES + ("lung",) if name in by_name]
        keep = nodules_in_lung(labels == nodule, np.isin(labels, lung_values), grid.spacing)
        labels[(labels == nodule) & ~keep] = 0
    airway = by_name.get("airway")
    if airway is not None and not (labels == airway).any():
        labels[
            classical_airway(grid)
            & np.isin(labels, [0, by_name.get("left lung", 0), by_name.get("right lung", 0)])
        ] = airway
    return labels


def classical_airway(grid: Volume) -> np.ndarray:
    """Trachea and main bronchi by the classical region growing (:mod:`..anatomy.airway`), on the model grid.

    Used when the network's airway channel gives nothing, so that the trachea is reported as
    airway instead of being swallowed by a lung (see the model card's limits). Empty when no
    trachea-like tube is found (e.g. a field of view below the carina).
    """
    body = body_mask(grid.array, grid.spacing)
    seed = find_trachea_seed((grid.array < AIR_THRESHOLD_HU) & body, body, grid.spacing)
    if seed is None:
        return np.zeros(grid.array.shape, dtype=bool)
    return grow_airway(grid.array, body, seed, grid.spacing)


def near_exterior_air(
    hu: np.ndarray, spacing: tuple[float, float, float], margin_mm: float = EXTERIOR_MARGIN_MM
) -> np.ndarray:
    """Voxels within ``margin_mm`` (in-plane) of the air outside the body.

    Exterior air is, per axial slice, the air (below -500 HU) connected to the slice's edge;
    lungs never touch it, because the chest wall encloses them in every axial slice.
    """
    air = hu < BODY_THRESHOLD_HU
    in_plane = np.zeros((3, 3, 3), dtype=bool)
    in_plane[1] = True
    components, _ = ndimage.label(air, structure=in_plane)
    edges = np.concatenate(
        [
            components[:, 0, :].ravel(),
            components[:, -1, :].ravel(),
            components[:, :, 0].ravel(),
            components[:, :, -1].ravel(),
        ]
    )
    exterior = np.isin(components, np.unique(edges[edges > 0]))
    steps = max(1, round(margin_mm / min(spacing[0], spacing[1])))
    return ndimage.binary_dilation(exterior, structure=in_plane, iterations=steps)


def largest_components(mask: np.ndarray, count: int, min_fraction: float = 0.0) -> np.ndarray:
    """The ``count`` largest 26-connected components of ``mask`` (each at least
    ``min_fraction`` of the largest)."""
    components, found = ndimage.label(mask, structure=np.ones((3, 3, 3)))
    if found <= count and min_fraction == 0.0:
        return mask.copy()
    sizes = np.bincount(components.ravel())
    sizes[0] = 0
    order = np.argsort(sizes)[::-1][:count]
    kept = [index for index in order if sizes[index] > 0 and sizes[index] >= min_fraction * sizes[order[0]]]
    return np.isin(components, kept)


def _assign_lungs(
    lung: np.ndarray, labels: np.ndarray, grid: Volume, midline_x: float, left: int, right: int
) -> None:
    """Write left/right lung labels into ``labels`` from the raw lung mask."""
    if not np.allclose(grid.direction, np.eye(3)):
        raise ValueError("left/right assignment expects the canonical (identity-direction) model grid")
    x_of_column = grid.origin[0] + grid.spacing[0] * np.arange(lung.shape[2])
    is_left_column = x_of_column > midline_x
    components, _ = ndimage.label(
        largest_components(lung, 2, MIN_LUNG_FRACTION), structure=np.ones((3, 3, 3))
    )
    for index, box in enumerate(ndimage.find_objects(components), start=1):
        if box is None:
            continue
        component = components[box] == index
        left_side = np.broadcast_to(is_left_column[box[2]], component.shape)
        left_fraction = float(np.count_nonzero(component & left_side)) / float(np.count_nonzero(component))
        region = labels[box]
        if STRADDLE_FRACTION <= left_fraction <= 1.0 - STRADDLE_FRACTION:
            region[component & left_side] = left
            region[component & ~left_side] = right
        else:
            region[component] = left if left_fraction > 0.5 else right


def nodules_in_lung(nodules: np.ndarray, lung: np.ndarray, spacing: tuple[float, float, float]) -> np.ndarray:
    """The nodule components that touch or lie in ``lung`` and are not tiny islands."""
    min_voxels = (math.pi / 6.0) * MIN_NODULE_DIAMETER_MM**3 / float(np.prod(spacing))
    components, _ = ndimage.label(nodules, structure=np.ones((3, 3, 3)))
    keep = np.zeros(nodules.shape, dtype=bool)
    for index, box in enumerate(ndimage.find_objects(components), start=1):
        if box is None:
            continue
        grown = tuple(slice(max(0, s.start - 1), s.stop + 1) for s in box)
        component = components[grown] == index
        if np.count_nonzero(component) < min_voxels:
            continue
        if np.any(ndimage.binary_dilation(component, structure=np.ones((3, 3, 3))) & lung[grown]):
            keep[grown] |= component
    return keep
