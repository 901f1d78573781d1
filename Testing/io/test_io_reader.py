"""read_volume on volume files: what it accepts, and one-line refusals for what it cannot use."""

from __future__ import annotations

import gzip

import numpy as np
import pytest
import SimpleITK as sitk
from MedSegAILib.errors import InputError
from MedSegAILib.io import Volume, read_volume
from MedSegAILib.io.reader import check_ct_values


def _ct_like(shape=(12, 10, 8), seed=0) -> np.ndarray:
    """Air around a soft-tissue block with noise: values a CT in HU could have."""
    rng = np.random.default_rng(seed)
    values = np.full(shape, -1000.0, dtype=np.float32)
    values[2:-2, 2:-2, 2:-2] = 40.0
    return values + rng.normal(0, 10, shape).astype(np.float32)


def _write(values: np.ndarray, path, spacing=(0.8, 0.8, 2.5)) -> None:
    image = sitk.GetImageFromArray(values)
    image.SetSpacing(spacing)
    sitk.WriteImage(image, str(path))


@pytest.mark.parametrize("name", ["ct.nii.gz", "ct.nii", "ct.nrrd", "ct.mha", "ct.mhd"])
def test_every_file_format_reads_as_float32_hu(tmp_path, name):
    values = _ct_like()
    _write(values.astype(np.int16), tmp_path / name)
    volume = read_volume(tmp_path / name)
    assert volume.array.dtype == np.float32
    np.testing.assert_array_equal(volume.array, values.astype(np.int16))
    np.testing.assert_allclose(volume.spacing, (0.8, 0.8, 2.5), atol=1e-6)
    assert volume.metadata["source"] == str(tmp_path / name)


def test_missing_path(tmp_path):
    with pytest.raises(InputError, match=r"nowhere\.nii\.gz: no such file or folder"):
        read_volume(tmp_path / "nowhere.nii.gz")


def test_truncated_nifti(tmp_path):
    path = tmp_path / "ct.nii.gz"
    _write(_ct_like((40, 40, 40)), path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(InputError, match=r"ct\.nii\.gz: file is truncated or damaged"):
        read_volume(path)


def test_truncated_uncompressed_nifti(tmp_path):
    path = tmp_path / "ct.nii"
    _write(_ct_like((40, 40, 40)), path)
    path.write_bytes(path.read_bytes()[:-1000])
    with pytest.raises(InputError, match=r"ct\.nii: file is truncated or damaged \(\d+ of \d+ bytes"):
        read_volume(path)


def test_text_file_named_nrrd(tmp_path):
    path = tmp_path / "ct.nrrd"
    path.write_text("this is a radiology report, not an image\n")
    with pytest.raises(InputError, match=r"ct\.nrrd: cannot be read as a nrrd image"):
        read_volume(path)


def test_unknown_file_that_is_not_dicom(tmp_path):
    path = tmp_path / "scan.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    with pytest.raises(InputError, match=r"scan\.png: not a DICOM file and not a known volume format"):
        read_volume(path)


def test_two_dimensional_image(tmp_path):
    path = tmp_path / "slice.nii.gz"
    sitk.WriteImage(sitk.GetImageFromArray(_ct_like()[0]), str(path))
    with pytest.raises(InputError, match=r"slice\.nii\.gz: image is not 3-D \(size 8x10\)"):
        read_volume(path)


def test_single_slice_3d_image(tmp_path):
    path = tmp_path / "slab.nrrd"
    _write(_ct_like((1, 10, 8)), path)
    with pytest.raises(InputError, match=r"not 3-D \(size 8x10x1\)"):
        read_volume(path)


def test_colour_image(tmp_path):
    path = tmp_path / "rgb.mha"
    sitk.WriteImage(sitk.GetImageFromArray(np.zeros((4, 5, 6, 3), np.uint8), isVector=True), str(path))
    with pytest.raises(InputError, match=r"3 components per voxel"):
        read_volume(path)


def test_series_option_is_for_dicom_only(tmp_path):
    path = tmp_path / "ct.nii.gz"
    _write(_ct_like(), path)
    with pytest.raises(InputError, match=r"--series applies to DICOM input only"):
        read_volume(path, series_uid="1.2.3")


@pytest.mark.parametrize(
    "case, expected",
    [
        ("nan", r"1 voxels are NaN or infinite"),
        ("inf", r"1 voxels are NaN or infinite"),
        ("zeros", r"every voxel is 0"),
        ("air only", r"no voxel above -500 HU \(values -1024 to -600\)"),
        ("binary mask", r"only two values \(0 and 1\): a binary mask"),
        ("label map", r"only non-negative whole numbers with few distinct values: a label map"),
    ],
)
def test_values_that_cannot_be_ct_are_refused(tmp_path, case, expected):
    values = _ct_like()
    if case == "nan":
        values[3, 4, 5] = np.nan
    elif case == "inf":
        values[3, 4, 5] = np.inf
    elif case == "zeros":
        values[:] = 0
    elif case == "air only":
        values = np.where(values > -500, -600.0, -1024.0).astype(np.float32)
    elif case == "binary mask":
        values = (values > -500).astype(np.float32)
    elif case == "label map":
        values = np.random.default_rng(1).integers(0, 120, values.shape).astype(np.float32)
    path = tmp_path / "volume.nii.gz"
    _write(values, path)
    with pytest.raises(InputError, match=r"volume\.nii\.gz: " + expected):
        read_volume(path)


def test_nan_is_refused_in_every_format(tmp_path):
    values = _ct_like()
    values[0, 0, 0] = np.nan
    for name in ("ct.nrrd", "ct.mha", "ct.nii"):
        _write(values, tmp_path / name)
        with pytest.raises(InputError, match=name.replace(".", r"\.") + r": 1 voxels are NaN or infinite"):
            read_volume(tmp_path / name)


def test_value_rules_accept_ct_without_air_and_raw_unsigned_ct():
    """A crop inside the body (no air) and 12-bit stored values are still accepted."""
    tissue = Volume(
        np.random.default_rng(2).normal(40, 30, (6, 6, 6)).astype(np.float32), (1, 1, 1), (0, 0, 0)
    )
    check_ct_values(tissue, "tissue.nii.gz")
    stored = Volume(
        np.random.default_rng(3).integers(0, 3000, (20, 20, 20)).astype(np.float32), (1, 1, 1), (0, 0, 0)
    )
    check_ct_values(stored, "stored.nii.gz")


def test_errors_are_single_lines(tmp_path):
    path = tmp_path / "ct.nii.gz"
    path.write_bytes(gzip.compress(b"garbage" * 100))
    with pytest.raises(InputError) as raised:
        read_volume(path)
    assert "\n" not in str(raised.value)
    assert str(raised.value).startswith(str(path))
