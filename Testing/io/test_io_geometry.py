"""Coordinate conventions (docs/coordinates.md): [k, j, i] arrays, LPS in files, RAS in Slicer.

Uses an oblique, anisotropic grid so that no axis swap, sign flip or transposed direction
matrix can go unnoticed.
"""

from __future__ import annotations

import gzip

import numpy as np
import pytest
import SimpleITK as sitk
from MedSegAILib.io import Volume, read_volume, write_float_map, write_label_map

SPACING = (0.7, 1.3, 2.9)
ORIGIN = (-120.5, 35.25, 410.0)


def _rotation(x_degrees: float, y_degrees: float, z_degrees: float) -> np.ndarray:
    """A proper rotation matrix (rotate about x, then y, then z)."""
    ax, ay, az = np.radians([x_degrees, y_degrees, z_degrees])
    rx = np.array([[1, 0, 0], [0, np.cos(ax), -np.sin(ax)], [0, np.sin(ax), np.cos(ax)]])
    ry = np.array([[np.cos(ay), 0, np.sin(ay)], [0, 1, 0], [-np.sin(ay), 0, np.cos(ay)]])
    rz = np.array([[np.cos(az), -np.sin(az), 0], [np.sin(az), np.cos(az), 0], [0, 0, 1]])
    return rz @ ry @ rx


DIRECTION = _rotation(20, -35, 50)


@pytest.fixture
def oblique() -> Volume:
    """A 9 (i) x 7 (j) x 5 (k) CT-like volume whose value encodes its index."""
    k, j, i = np.meshgrid(np.arange(5), np.arange(7), np.arange(9), indexing="ij")
    values = (-1000 + 100 * i + 10 * j + k).astype(np.float32)
    return Volume(values, SPACING, ORIGIN, DIRECTION)


def test_array_is_indexed_k_j_i(oblique):
    assert oblique.array.shape == (5, 7, 9)
    assert oblique.shape_ijk == (9, 7, 5)
    image = oblique.to_sitk()
    assert image.GetSize() == (9, 7, 5)
    assert image.GetPixel(8, 2, 4) == oblique.array[4, 2, 8] == -1000 + 800 + 20 + 4


def test_index_to_lps_matches_simpleitk(oblique):
    image = oblique.to_sitk()
    for index in [(0, 0, 0), (8, 6, 4), (3, 1, 2), (5, 0, 4)]:
        np.testing.assert_allclose(
            oblique.ijk_to_lps(index), image.TransformIndexToPhysicalPoint(index), atol=1e-9
        )
    continuous = (2.5, 0.25, 3.75)
    expected = image.TransformContinuousIndexToPhysicalPoint(continuous)
    np.testing.assert_allclose(oblique.ijk_to_lps(continuous), expected, atol=1e-9)
    np.testing.assert_allclose(oblique.index_to_lps() @ (*continuous, 1.0), (*expected, 1.0), atol=1e-9)
    np.testing.assert_allclose(oblique.lps_to_ijk(expected), continuous, atol=1e-9)
    np.testing.assert_allclose(image.TransformPhysicalPointToContinuousIndex(expected), continuous, atol=1e-9)


def test_direction_columns_are_the_i_j_k_axes_in_lps(oblique):
    """One step along i moves spacing[0] mm along the first column of the direction matrix."""
    step_i = oblique.ijk_to_lps((1, 0, 0)) - oblique.ijk_to_lps((0, 0, 0))
    step_k = oblique.ijk_to_lps((0, 0, 1)) - oblique.ijk_to_lps((0, 0, 0))
    np.testing.assert_allclose(step_i, SPACING[0] * DIRECTION[:, 0], atol=1e-12)
    np.testing.assert_allclose(step_k, SPACING[2] * DIRECTION[:, 2], atol=1e-12)


def test_lps_to_ras_negates_x_and_y(oblique):
    index = (3, 1, 2, 1.0)
    lps = oblique.index_to_lps() @ index
    ras = oblique.index_to_ras() @ index
    np.testing.assert_allclose(ras[:3], lps[:3] * [-1, -1, 1], atol=1e-12)


def test_nifti_file_stores_the_ras_matrix(oblique, tmp_path):
    """NIfTI's sform is RAS by definition: the header holds exactly index_to_ras()."""
    path = write_float_map(oblique.array, oblique, tmp_path / "oblique.nii.gz")
    header = gzip.open(path).read(348)
    sform_code = int(np.frombuffer(header, "<i2", 1, 254)[0])
    srow = np.frombuffer(header, "<f4", 12, 280).reshape(3, 4)
    assert sform_code > 0
    np.testing.assert_allclose(srow, oblique.index_to_ras()[:3], atol=1e-4)


@pytest.mark.parametrize("name", ["oblique.nii.gz", "oblique.nrrd", "oblique.mha"])
def test_oblique_anisotropic_volume_round_trips(oblique, tmp_path, name):
    back = read_volume(write_float_map(oblique.array, oblique, tmp_path / name))
    np.testing.assert_array_equal(back.array, oblique.array)
    np.testing.assert_allclose(back.spacing, SPACING, atol=1e-5)
    np.testing.assert_allclose(back.origin, ORIGIN, atol=1e-4)
    np.testing.assert_allclose(back.direction, DIRECTION, atol=1e-5)


def test_label_map_keeps_the_grid_and_picks_a_small_integer_type(oblique, tmp_path):
    labels = (np.arange(oblique.array.size) % 4).reshape(oblique.array.shape)
    back = Volume.from_sitk(sitk.ReadImage(str(write_label_map(labels, oblique, tmp_path / "labels.nii.gz"))))
    assert back.array.dtype == np.uint8
    np.testing.assert_array_equal(back.array, labels)
    assert back.same_grid(oblique, tolerance=1e-5)
    many = labels * 100
    assert (
        sitk.ReadImage(str(write_label_map(many, oblique, tmp_path / "many.nrrd"))).GetPixelID()
        == sitk.sitkUInt16
    )
    with pytest.raises(ValueError, match="negative"):
        write_label_map(labels - 1, oblique, tmp_path / "bad.nii.gz")
    with pytest.raises(ValueError, match="does not match grid"):
        write_label_map(labels[:-1], oblique, tmp_path / "bad.nii.gz")
    assert not (tmp_path / "bad.nii.gz").exists()
