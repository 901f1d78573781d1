"""Nodule measurements: centre, box, volume, axial long/short axis, Lung-RADS, in LPS mm."""

from __future__ import annotations

import numpy as np
import pytest
from MedSegAILib.detection.measure import lung_rads_category, measure_component

from .synthetic import ellipsoid_mask, grid, rotation

ANISOTROPIC = (0.7, 0.8, 2.5)


def test_sphere_centre_box_and_volume_on_an_oblique_anisotropic_grid():
    volume = grid(
        (30, 64, 64),
        ANISOTROPIC,
        origin=(-20.0, 10.0, -30.0),
        direction=rotation("z", 25) @ rotation("x", 10),
    )
    center = volume.ijk_to_lps([31.3, 30.6, 14.2])
    mask = ellipsoid_mask(volume, center, (6.0, 6.0, 6.0))
    m = measure_component(mask, volume)
    assert np.linalg.norm(np.subtract(m.center, center)) < 0.5
    assert m.volume_mm3 == pytest.approx(4 / 3 * np.pi * 6.0**3, rel=0.1)
    low, high = np.array(m.bbox)
    assert np.all(np.abs(high - low - 12.0) < 2.5)
    assert np.all(low < center) and np.all(high > center)


def test_median_diameter_error_of_ellipsoids_at_anisotropic_spacing_is_within_1_5_mm():
    rng = np.random.default_rng(4)
    errors = []
    for _ in range(12):
        a, b = sorted(rng.uniform(2.5, 12.0, size=2), reverse=True)
        c = rng.uniform(3.0, 10.0)
        angle = rng.uniform(0, 180)
        volume = grid((24, 56, 56), ANISOTROPIC, direction=rotation("z", rng.uniform(-30, 30)))
        center = volume.ijk_to_lps(np.array([28, 28, 12]) + rng.uniform(-0.5, 0.5, size=3))
        mask = ellipsoid_mask(volume, center, (a, b, c), rotation("z", angle))
        m = measure_component(mask, volume)
        errors += [abs(m.long_axis_mm - 2 * a), abs(m.short_axis_mm - 2 * b)]
        assert m.mean_diameter_mm == pytest.approx((m.long_axis_mm + m.short_axis_mm) / 2, abs=0.06)
    assert np.median(errors) <= 1.5
    assert max(errors) <= 3.0


def test_long_axis_is_measured_in_the_axial_plane_not_along_the_head_foot_axis():
    volume = grid((40, 40, 40), (1.0, 1.0, 1.0))
    mask = ellipsoid_mask(volume, (20.0, 20.0, 20.0), (4.0, 3.0, 15.0))  # a vessel running head-foot
    m = measure_component(mask, volume)
    assert m.long_axis_mm == pytest.approx(8.0, abs=1.0)
    assert m.short_axis_mm == pytest.approx(6.0, abs=1.0)


def test_axial_plane_is_found_when_slices_are_stored_along_another_array_axis():
    # A sagittally stored grid (k runs along x): the axial plane is then i-k.
    direction = np.array([[0, 0, 1], [1, 0, 0], [0, 1, 0]], dtype=float)
    volume = grid((30, 40, 30), (1.0, 1.0, 1.0), direction=direction)
    center = volume.ijk_to_lps([15, 20, 15])
    mask = ellipsoid_mask(volume, center, (9.0, 5.0, 3.0))
    m = measure_component(mask, volume)
    assert m.long_axis_mm == pytest.approx(18.0, abs=1.0)
    assert m.short_axis_mm == pytest.approx(10.0, abs=1.0)


def test_single_voxel_measures_one_voxel():
    volume = grid((5, 5, 5), (0.5, 0.7, 2.0))
    mask = np.zeros((5, 5, 5), dtype=bool)
    mask[2, 2, 2] = True
    m = measure_component(mask, volume)
    assert m.volume_mm3 == pytest.approx(0.7)
    assert (m.long_axis_mm, m.short_axis_mm) == pytest.approx((0.7, 0.5))
    assert np.allclose(np.subtract(m.bbox[1], m.bbox[0]), (0.5, 0.7, 2.0))


@pytest.mark.parametrize(
    "mean, category",
    [(3.0, "2"), (5.94, "2"), (5.96, "3"), (7.9, "3"), (8.0, "4A"), (14.9, "4A"), (15.0, "4B"), (40.0, "4B")],
)
def test_lung_rads_solid_baseline_size_categories(mean, category):
    assert lung_rads_category(mean) == category


def test_empty_or_mismatched_masks_are_refused():
    volume = grid((4, 4, 4), (1, 1, 1))
    with pytest.raises(ValueError):
        measure_component(np.zeros((4, 4, 4), bool), volume)
    with pytest.raises(ValueError):
        measure_component(np.ones((3, 4, 4), bool), volume)


@pytest.mark.parametrize(("diameter", "kind", "category"), [(20.0, "nodule", "4B"), (40.0, "mass", None)])
def test_a_lesion_over_30_mm_is_a_mass_with_no_lung_rads_size_category(diameter, kind, category):
    image = grid((50, 50, 50), (1.0, 1.0, 1.0))
    radius = diameter / 2.0
    measured = measure_component(ellipsoid_mask(image, (25.0, 25.0, 25.0), (radius, radius, radius)), image)
    assert measured.to_json()["kind"] == kind
    assert measured.lung_rads == category
