"""Synthetic nodules: the requested size, the HU profile of their kind, host structures kept."""

import numpy as np
import pytest
from MedSegAILib.training.synthetic_nodules import (
    NoduleSpec,
    estimate_noise_sd,
    insert_nodule,
    insert_random_nodules,
)

SPACING = (1.0, 1.0, 1.0)


def host(noise=0.0):
    rng = np.random.default_rng(1)
    return (np.full((48, 48, 48), -850.0) + rng.normal(0, noise, (48, 48, 48))).astype(np.float32)


@pytest.mark.parametrize("diameter", [4.0, 10.0, 23.0])
def test_inserted_nodule_has_the_requested_diameter(diameter):
    spec = NoduleSpec(center=(24.0, 24.0, 24.0), diameter_mm=diameter, kind="solid")
    _, mask = insert_nodule(host(), spec, SPACING, np.random.default_rng(0), noise_sd=0.0)
    for axis in range(3):
        extent = np.nonzero(mask.any(axis=tuple(a for a in range(3) if a != axis)))[0]
        assert abs((extent[-1] - extent[0] + 1) - diameter) <= 1.0
    equivalent = (6 * mask.sum() / np.pi) ** (1 / 3)
    assert abs(equivalent - diameter) <= 1.0


def test_solid_profile_is_flat_inside_with_a_partial_volume_edge():
    spec = NoduleSpec(center=(24.0, 24.0, 24.0), diameter_mm=16.0, kind="solid", solid_hu=40.0)
    hu, _ = insert_nodule(host(), spec, SPACING, np.random.default_rng(0), noise_sd=0.0)
    profile = hu[24, 24, 24:36]
    assert np.allclose(profile[:7], 40.0)  # inside: the nodule's HU
    assert -850.0 < profile[8] < 40.0  # the edge voxel is a partial-volume mix
    assert np.allclose(profile[10:], -850.0)  # outside: the host


def test_part_solid_has_a_solid_core_and_ground_glass_rim():
    spec = NoduleSpec(
        center=(24.0, 24.0, 24.0),
        diameter_mm=20.0,
        kind="part-solid",
        solid_hu=30.0,
        ground_glass_hu=-600.0,
        core_fraction=0.4,
    )
    hu, _ = insert_nodule(host(), spec, SPACING, np.random.default_rng(0), noise_sd=0.0)
    assert hu[24, 24, 24] == pytest.approx(30.0)
    assert hu[24, 24, 31] == pytest.approx(-600.0)


def test_ground_glass_keeps_a_vessel_running_through_it():
    base = host()
    base[24, 24, :] = 40.0  # a vessel
    spec = NoduleSpec(
        center=(24.0, 24.0, 24.0), diameter_mm=14.0, kind="ground-glass", ground_glass_hu=-600.0
    )
    hu, _ = insert_nodule(base, spec, SPACING, np.random.default_rng(0), noise_sd=0.0)
    assert np.allclose(hu[24, 24, :], 40.0)
    assert hu[24, 20, 24] == pytest.approx(-600.0)


def test_added_noise_matches_the_host_noise():
    base = host(noise=25.0)
    assert estimate_noise_sd(base, (24, 24, 24), 30.0, SPACING) == pytest.approx(25.0, rel=0.15)
    spec = NoduleSpec(
        center=(24.0, 24.0, 24.0), diameter_mm=24.0, kind="ground-glass", ground_glass_hu=-500.0
    )
    hu, _ = insert_nodule(base, spec, SPACING, np.random.default_rng(0))
    inside = hu[20:29, 20:29, 20:29]
    assert inside.mean() == pytest.approx(-500.0, abs=10.0)
    assert inside.std() == pytest.approx(25.0, rel=0.3)


def test_random_nodules_stay_in_the_lung_and_label_only_lung():
    base = host()
    lung = np.zeros(base.shape, dtype=bool)
    lung[4:44, 4:44, 4:44] = True
    hu, mask, specs = insert_random_nodules(
        base, lung, SPACING, 3, np.random.default_rng(3), diameter_range=(4.0, 12.0)
    )
    assert specs and mask.any()
    assert not (mask & ~lung).any()
    assert all(lung[tuple(int(c) for c in s.center)] for s in specs)
    assert all(4.0 <= s.diameter_mm <= 12.0 for s in specs)
