"""Preprocessing: the input volume as the network sees it.

Steps: resample onto an axis-aligned canonical LPS grid at the model card's spacing (or
``input.fast_spacing`` in fast mode); crop to the body's bounding box (voxels above
-500 HU, largest connected component, plus a margin); pad to the network's divisor with
air; apply the card's intensity normalisation.

:func:`~.resample.resample_to_spacing` produces the canonical orientation directly (it
resamples any input direction, oblique included, onto an identity-direction grid), so the
lossless :func:`~.resample.to_canonical` permutation would only add a full-size copy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from ..errors import InputError
from ..io.volume import Volume
from ..models.card import ModelCard
from ..models.normalization import normalize_intensity
from .resample import resample_to_spacing

AIR_HU = -1024.0
BODY_THRESHOLD_HU = -500.0
BODY_MARGIN_MM = 10.0


@dataclass
class PreparedInput:
    """A volume ready for the network.

    Attributes:
        model_grid: the cropped volume in HU at model spacing, canonical LPS (identity
            direction); its geometry maps model-grid voxels to patient coordinates.
        network_input: ``model_grid`` normalised and padded with air at the high end of
            each axis to a multiple of the network divisor, float32 ``[k, j, i]``.
        midline_x: LPS x (mm) of the centre of the body's bounding box.
    """

    model_grid: Volume
    network_input: np.ndarray
    midline_x: float


def model_spacing(card: ModelCard, fast: bool) -> tuple[float, float, float]:
    """The spacing (x, y, z) mm the model runs at; ``fast`` uses ``input.fast_spacing``.

    Raises:
        InputError: ``fast`` was asked for and the card has no ``fast_spacing``.
    """
    if not fast:
        return card.spacing
    if "fast_spacing" not in card.input:
        raise InputError(
            f"model {card.name!r} has no fast mode (no input.fast_spacing in its card); run without --fast"
        )
    return tuple(float(s) for s in card.input["fast_spacing"])  # type: ignore[return-value]


def prepare_input(volume: Volume, card: ModelCard, *, divisor: int, fast: bool = False) -> PreparedInput:
    """Resample, crop, pad and normalise ``volume`` for ``card``'s network.

    Args:
        volume: the CT in HU on its own grid (any orientation).
        card: the model card (spacing, normalisation).
        divisor: the network needs sizes divisible by this.
        fast: use the card's ``fast_spacing``.

    Returns:
        The prepared input.

    Raises:
        InputError: the volume is too small for the model at its spacing.
    """
    spacing = model_spacing(card, fast)
    resampled = resample_to_spacing(volume.to_sitk(), spacing, sitk.sitkLinear, AIR_HU)
    grid = Volume.from_sitk(resampled)
    del resampled
    if min(grid.array.shape) < divisor:
        source = volume.metadata.get("source", "input volume")
        raise InputError(
            f"{source}: the volume is too small for the model ({grid.array.shape[::-1]} voxels at "
            f"{spacing} mm; at least {divisor} along each axis); give a CT that covers the chest"
        )
    box = body_bounding_box(grid.array, grid.spacing)
    cropped = crop(grid, box)
    padded = pad_to_divisor(cropped.array, divisor, AIR_HU)
    network_input = normalize_intensity(padded, card.input["normalization"])
    x_low = cropped.origin[0]
    x_high = x_low + (cropped.array.shape[2] - 1) * cropped.spacing[0]
    return PreparedInput(model_grid=cropped, network_input=network_input, midline_x=(x_low + x_high) / 2.0)


def body_bounding_box(
    hu: np.ndarray, spacing: tuple[float, float, float], margin_mm: float = BODY_MARGIN_MM
) -> tuple[slice, slice, slice]:
    """The ``[k, j, i]`` slices of the body: largest component above -500 HU plus a margin.

    Returns the whole array when nothing is above the threshold.
    """
    components, count = ndimage.label(hu > BODY_THRESHOLD_HU)
    if count == 0:
        return tuple(slice(0, n) for n in hu.shape)  # type: ignore[return-value]
    sizes = np.bincount(components.ravel())
    sizes[0] = 0
    largest = int(np.argmax(sizes))
    box = ndimage.find_objects(components)[largest - 1]
    margins = [math.ceil(margin_mm / s) for s in spacing[::-1]]
    return tuple(slice(max(0, b.start - m), min(n, b.stop + m)) for b, m, n in zip(box, margins, hu.shape))  # type: ignore[return-value]


def crop(volume: Volume, box: tuple[slice, slice, slice]) -> Volume:
    """The part of ``volume`` inside ``box`` (``[k, j, i]`` slices), as a contiguous copy."""
    cropped = volume.crop(box)
    return cropped.with_array(np.ascontiguousarray(cropped.array))


def pad_to_divisor(array: np.ndarray, divisor: int, value: float) -> np.ndarray:
    """Pad ``array`` at the high end of each axis to a multiple of ``divisor``."""
    pad = [(0, (-n) % divisor) for n in array.shape]
    if not any(high for _, high in pad):
        return array.astype(np.float32, copy=False)
    return np.pad(array.astype(np.float32, copy=False), pad, constant_values=value)
