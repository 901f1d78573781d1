"""Synthetic lung nodules inserted into real CT lungs (training and held-out validation).

A nodule is a lobulated ball (radius modulated by a few random low-order lobes) with a
partial-volume edge: each voxel's occupancy is the fraction of it inside the surface,
approximated by a linear ramp one voxel wide. Its HU is blended into the host scan:
``new = host * (1 - occ) + (nodule_hu + noise) * occ``, never darker than the host, so
vessels running through a ground-glass nodule stay visible. The added noise has the
standard deviation of the host scan's local noise.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

KINDS = ("solid", "part-solid", "ground-glass")
PLACEMENTS = ("isolated", "juxta-pleural", "juxta-vascular")
SOLID_HU = (-20.0, 60.0)
GROUND_GLASS_HU = (-700.0, -450.0)


@dataclass(frozen=True)
class NoduleSpec:
    """What to insert: centre ``(z, y, x)`` voxel, diameter in mm, kind and shape parameters."""

    center: tuple[float, float, float]
    diameter_mm: float
    kind: str = "solid"
    solid_hu: float = 30.0
    ground_glass_hu: float = -600.0
    core_fraction: float = 0.5
    lobulation: float = 0.0
    seed: int = 0


def estimate_noise_sd(
    hu: np.ndarray, center: Sequence[int], box_mm: float, spacing: Sequence[float]
) -> float:
    """Local noise standard deviation (HU) near ``center``: robust spread of a high-pass residual.

    Args:
        hu: CT ``[z, y, x]``.
        center: ``(z, y, x)`` voxel.
        box_mm: edge of the cube examined.
        spacing: voxel size (x, y, z) mm.
    """
    half = [max(2, int(box_mm / 2 / s)) for s in spacing[::-1]]
    region = tuple(slice(max(0, int(c) - h), int(c) + h + 1) for c, h in zip(center, half))
    patch = hu[region].astype(np.float32)
    residual = patch - ndimage.uniform_filter(patch, size=3)
    mad = np.median(np.abs(residual - np.median(residual)))
    # A 3x3x3 box residual keeps sqrt(26/27) of white noise.
    return float(1.4826 * mad / np.sqrt(26.0 / 27.0))


def nodule_occupancy(spec: NoduleSpec, shape: Sequence[int], spacing: Sequence[float]) -> np.ndarray:
    """Partial-volume occupancy (0..1) of the nodule surface on a grid of ``shape`` ``[z, y, x]``.

    Only a box around the nodule is computed; the rest stays 0.
    """
    spacing_zyx = np.array(spacing[::-1], dtype=float)
    radius = spec.diameter_mm / 2.0
    reach = radius * (1.0 + abs(spec.lobulation)) + 2.0 * spacing_zyx.max()
    lo = [max(0, int(np.floor(c - reach / s))) for c, s in zip(spec.center, spacing_zyx)]
    hi = [min(n, int(np.ceil(c + reach / s)) + 1) for c, n, s in zip(spec.center, shape, spacing_zyx)]
    out = np.zeros(shape, dtype=np.float32)
    if any(stop <= start for start, stop in zip(lo, hi)):
        return out
    grids = np.meshgrid(
        *[(np.arange(start, stop) - c) * s for start, stop, c, s in zip(lo, hi, spec.center, spacing_zyx)],
        indexing="ij",
    )
    distance = np.sqrt(sum(g**2 for g in grids))
    local_radius = np.full(distance.shape, radius, dtype=np.float64)
    if spec.lobulation > 0:
        rng = np.random.default_rng(spec.seed)
        unit = [g / np.maximum(distance, 1e-6) for g in grids]
        for _ in range(4):
            axis = rng.normal(size=3)
            axis /= np.linalg.norm(axis)
            frequency = rng.integers(2, 5)
            phase = rng.uniform(0, 2 * np.pi)
            cosine = sum(a * u for a, u in zip(axis, unit))
            local_radius += (
                radius * spec.lobulation / 4.0 * np.cos(frequency * np.arccos(np.clip(cosine, -1, 1)) + phase)
            )
    # Signed distance in voxel units along the local spacing -> a one-voxel linear ramp.
    voxel = float(np.mean(spacing_zyx))
    out[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]] = np.clip(
        (local_radius - distance) / voxel + 0.5, 0.0, 1.0
    )
    return out


def insert_nodule(
    hu: np.ndarray,
    spec: NoduleSpec,
    spacing: Sequence[float],
    rng: np.random.Generator,
    noise_sd: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Blend one nodule into ``hu``.

    Args:
        hu: host CT ``[z, y, x]`` in HU (not modified).
        spec: the nodule.
        spacing: voxel size (x, y, z) mm.
        rng: random generator for the texture noise.
        noise_sd: noise to add (HU); estimated from the host around the centre when ``None``.

    Returns:
        ``(new_hu, mask)``: the CT with the nodule, and its label (occupancy >= 0.5).

    Raises:
        ValueError: unknown ``spec.kind``.
    """
    if spec.kind not in KINDS:
        raise ValueError(f"unknown nodule kind {spec.kind!r}; use one of {', '.join(KINDS)}")
    occupancy = nodule_occupancy(spec, hu.shape, spacing)
    box = ndimage.find_objects((occupancy > 0).astype(np.uint8))
    mask = occupancy >= 0.5
    if not box or box[0] is None:
        return hu.copy(), mask
    region = box[0]
    if noise_sd is None:
        noise_sd = estimate_noise_sd(hu, [int(round(c)) for c in spec.center], 40.0, spacing)
    occ = occupancy[region]
    if spec.kind == "solid":
        target = np.full(occ.shape, spec.solid_hu, dtype=np.float32)
    else:
        target = np.full(occ.shape, spec.ground_glass_hu, dtype=np.float32)
        if spec.kind == "part-solid":
            core = NoduleSpec(
                spec.center,
                spec.diameter_mm * spec.core_fraction,
                "solid",
                lobulation=spec.lobulation / 2,
                seed=spec.seed + 1,
            )
            core_occ = nodule_occupancy(core, hu.shape, spacing)[region]
            target = target * (1 - core_occ) + spec.solid_hu * core_occ
    target = target + rng.normal(0.0, noise_sd, size=occ.shape).astype(np.float32)
    out = hu.copy()
    host = out[region]
    blended = host * (1.0 - occ) + target * occ
    out[region] = np.maximum(host, blended)
    return out, mask


def placement_maps(
    hu: np.ndarray, lung: np.ndarray, spacing: Sequence[float]
) -> tuple[np.ndarray, np.ndarray]:
    """Depth inside the lung and distance to the nearest vessel (mm), which place the nodules."""
    spacing_zyx = np.array(spacing[::-1], dtype=float)
    depth = ndimage.distance_transform_edt(lung, sampling=spacing_zyx)
    vessels = (hu > -400) & (depth > 3.0)
    vessel_distance = (
        ndimage.distance_transform_edt(~vessels, sampling=spacing_zyx)
        if vessels.any()
        else np.full(hu.shape, np.inf)
    )
    return depth, vessel_distance


def sample_nodule_specs(
    hu: np.ndarray,
    lung: np.ndarray,
    spacing: Sequence[float],
    count: int,
    rng: np.random.Generator,
    diameter_range: tuple[float, float] = (4.0, 30.0),
    maps: tuple[np.ndarray, np.ndarray] | None = None,
) -> list[NoduleSpec]:
    """Random nodules placed in ``lung``: isolated, juxta-pleural and juxta-vascular.

    Diameters are log-uniform in ``diameter_range`` (small nodules are common);
    juxta-pleural centres sit about a radius inside the lung border, juxta-vascular ones
    about a radius from a vessel (soft tissue inside the lung).

    Args:
        maps: :func:`placement_maps` of ``(hu, lung)`` when already computed (many draws on one host).

    Returns:
        Up to ``count`` specs (fewer when the lung is too small for them).
    """
    depth, vessel_distance = maps if maps is not None else placement_maps(hu, lung, spacing)
    specs = []
    for index in range(count):
        diameter = float(np.exp(rng.uniform(*np.log(diameter_range))))
        radius = diameter / 2.0
        placement = PLACEMENTS[rng.integers(len(PLACEMENTS))]
        if placement == "juxta-pleural":
            candidates = (depth > 0.5 * radius) & (depth < 0.9 * radius + 1.0)
        elif placement == "juxta-vascular":
            candidates = (
                (depth > radius + 1.0) & (vessel_distance > 0.6 * radius) & (vessel_distance < radius + 2.0)
            )
        else:
            candidates = (depth > radius + 3.0) & (vessel_distance > 0.8 * radius)
        points = np.argwhere(candidates)
        if len(points) == 0:
            continue
        center = tuple(float(c) for c in points[rng.integers(len(points))])
        kind = KINDS[rng.integers(len(KINDS))]
        specs.append(
            NoduleSpec(
                center=center,
                diameter_mm=diameter,
                kind=kind,
                solid_hu=float(rng.uniform(*SOLID_HU)),
                ground_glass_hu=float(rng.uniform(*GROUND_GLASS_HU)),
                core_fraction=float(rng.uniform(0.3, 0.6)),
                lobulation=float(rng.uniform(0.0, 0.35)),
                seed=int(rng.integers(1 << 30)) + index,
            )
        )
    return specs


def insert_random_nodules(
    hu: np.ndarray,
    lung: np.ndarray,
    spacing: Sequence[float],
    count: int,
    rng: np.random.Generator,
    diameter_range: tuple[float, float] = (4.0, 30.0),
) -> tuple[np.ndarray, np.ndarray, list[NoduleSpec]]:
    """Insert ``count`` random nodules into ``lung``.

    Returns:
        ``(new_hu, nodule_mask, specs)``; the mask is limited to the lung (a juxta-pleural
        nodule's part in the chest wall is not labelled).
    """
    specs = sample_nodule_specs(hu, lung, spacing, count, rng, diameter_range)
    out = hu
    mask = np.zeros(hu.shape, dtype=bool)
    for spec in specs:
        out, one = insert_nodule(out, spec, spacing, rng)
        mask |= one
    return out, mask & lung, specs
