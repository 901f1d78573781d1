"""Training patches: sampling, synthetic nodules, spatial and intensity augmentation.

Everything works on canonical ``[z, y, x]`` arrays in HU at the model spacing. The network
predicts a single "lung" class (left/right is decided later by patient coordinates), so
flips along every axis are allowed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from .cases import IGNORE, Case
from .synthetic_nodules import insert_random_nodules


@dataclass(frozen=True)
class AugmentOptions:
    """Augmentation strengths (probabilities and ranges)."""

    rotation_deg: float = 15.0
    scale: tuple[float, float] = (0.8, 1.25)
    flip: bool = True
    slice_thickness_mm: tuple[float, float] = (1.0, 5.0)
    p_thickness: float = 0.4
    pixel_size_mm: tuple[float, float] = (2.0, 5.0)
    p_pixel: float = 0.3
    noise_sd_hu: tuple[float, float] = (0.0, 40.0)
    contrast: tuple[float, float] = (0.9, 1.1)
    brightness_hu: tuple[float, float] = (-40.0, 40.0)
    p_blur: float = 0.2
    lung_density_shift_hu: tuple[float, float] = (-150.0, 150.0)
    p_lung_density: float = 0.7
    p_nodules: float = 0.6
    max_nodules: int = 3


def _rotation(angles: Sequence[float]) -> np.ndarray:
    matrix = np.eye(3)
    for axis, angle in enumerate(angles):
        c, s = np.cos(angle), np.sin(angle)
        a, b = [i for i in range(3) if i != axis]
        r = np.eye(3)
        r[a, a], r[a, b], r[b, a], r[b, b] = c, -s, s, c
        matrix = matrix @ r
    return matrix


def _choose_center(case: Case, rng: np.random.Generator) -> np.ndarray:
    """Patch centre: on a nodule, in the lung, on the airway or anywhere, by chance."""
    draw = rng.uniform()
    for wanted, threshold in ((2, 0.15), (3, 0.25), (1, 0.8)):
        if draw < threshold:
            points = np.argwhere(case.label == wanted)
            if len(points):
                return points[rng.integers(len(points))].astype(float)
    return np.array([rng.uniform(0, n - 1) for n in case.hu.shape])


def sample_patch(
    case: Case, patch: Sequence[int], rng: np.random.Generator, options: AugmentOptions
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One augmented training patch.

    Args:
        case: the prepared scan.
        patch: patch size ``(z, y, x)`` in voxels.
        rng: random generator (the only source of randomness).
        options: augmentation strengths.

    Returns:
        ``(hu, label, outside)``: float32 HU, uint8 classes and the boolean outside-air
        mask of the whole scan, all of shape ``patch``; outside a cropped scan's field of
        view the label is ``IGNORE``.
    """
    patch = np.array(patch, dtype=int)
    center = _choose_center(case, rng)
    scale = float(np.exp(rng.uniform(*np.log(options.scale))))
    angles = np.radians(rng.uniform(-options.rotation_deg, options.rotation_deg, size=3))
    matrix = _rotation(angles) * scale  # output voxel offset -> source voxel offset
    if options.flip:
        matrix = matrix @ np.diag(rng.choice([-1.0, 1.0], size=3))
    # Cut a source region that covers the transformed patch, insert nodules there, then warp.
    half = np.abs(matrix) @ (patch / 2.0) + 2
    lo = np.floor(center - half).astype(int)
    hi = np.ceil(center + half).astype(int) + 1
    pad_lo = np.maximum(0, -lo)
    pad_hi = np.maximum(0, hi - np.array(case.hu.shape))
    region = tuple(slice(max(0, start), min(n, stop)) for start, stop, n in zip(lo, hi, case.hu.shape))
    hu = np.pad(case.hu[region].astype(np.float32), list(zip(pad_lo, pad_hi)), constant_values=-1024.0)
    outside = IGNORE if case.cropped else 0
    label = np.pad(case.label[region], list(zip(pad_lo, pad_hi)), constant_values=outside)
    air_outside = np.pad(case.outside[region], list(zip(pad_lo, pad_hi)), constant_values=True)
    if rng.uniform() < options.p_nodules and (label == 1).sum() > 1000:
        count = int(rng.integers(1, options.max_nodules + 1))
        hu, nodules, _ = insert_random_nodules(hu, label == 1, case.spacing, count, rng)
        label = label.copy()
        label[nodules] = 2
    offset = (center - lo) - matrix @ (patch / 2.0 - 0.5)
    hu = ndimage.affine_transform(hu, matrix, offset, output_shape=tuple(patch), order=1, cval=-1024.0)
    label = ndimage.affine_transform(label, matrix, offset, output_shape=tuple(patch), order=0, cval=outside)
    air_outside = ndimage.affine_transform(
        air_outside.astype(np.uint8), matrix, offset, output_shape=tuple(patch), order=0, cval=1
    ).astype(bool)
    hu = _slice_thickness(hu, case.spacing, rng, options)
    return _intensity(hu, air_outside, rng, options), label.astype(np.uint8), air_outside


def _slice_thickness(
    hu: np.ndarray, spacing: Sequence[float], rng: np.random.Generator, options: AugmentOptions
) -> np.ndarray:
    """Simulate thicker slices (along z) and, independently, coarser pixels (in-plane)."""
    if rng.uniform() < options.p_thickness:
        hu = _coarser(hu, (0,), spacing[2], rng.uniform(*options.slice_thickness_mm))
    if rng.uniform() < options.p_pixel:
        hu = _coarser(hu, (1, 2), spacing[0], rng.uniform(*options.pixel_size_mm))
    return hu


def _coarser(hu: np.ndarray, axes: Sequence[int], spacing: float, size_mm: float) -> np.ndarray:
    """Blur ``axes`` with a profile of FWHM ``size_mm``, resample to that size and back."""
    factor = spacing / size_mm
    if factor >= 1.0:
        return hu
    sigma = [0.42 * size_mm / spacing if axis in axes else 0.0 for axis in range(3)]
    zoom = [factor if axis in axes else 1.0 for axis in range(3)]
    coarse = ndimage.zoom(ndimage.gaussian_filter(hu, sigma), zoom, order=1)
    back = ndimage.zoom(coarse, [n / c for n, c in zip(hu.shape, coarse.shape)], order=1)
    out = np.full(hu.shape, -1024.0, dtype=np.float32)
    region = tuple(slice(0, min(a, b)) for a, b in zip(hu.shape, back.shape))
    out[region] = back[region]
    return out


def _intensity(
    hu: np.ndarray, outside: np.ndarray, rng: np.random.Generator, options: AugmentOptions
) -> np.ndarray:
    """Lung density (inspiration, emphysema, expiration), contrast, brightness, blur and noise in HU."""
    if rng.uniform() < options.p_lung_density:
        # Shift air-like values inside the body only: full shift below -600 HU, none above -200 HU.
        weight = np.clip((-200.0 - hu) / 400.0, 0.0, 1.0) * ~outside
        hu = hu + rng.uniform(*options.lung_density_shift_hu) * weight
    hu = hu * rng.uniform(*options.contrast) + rng.uniform(*options.brightness_hu)
    if rng.uniform() < options.p_blur:
        hu = ndimage.gaussian_filter(hu, rng.uniform(0.3, 1.0))
    noise = rng.uniform(*options.noise_sd_hu)
    if noise > 0:
        hu = hu + rng.normal(0.0, noise, size=hu.shape).astype(np.float32)
    return hu.astype(np.float32)
