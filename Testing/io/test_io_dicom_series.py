"""DICOM series reading: sorting, geometry, metadata, and the series it must refuse.

Every broken series is a copy of the real CIP series (64x64x79 CT) edited with pydicom.
"""

from __future__ import annotations

import shutil

import numpy as np
import pydicom
import pytest
from dicom_copies import copy_series
from MedSegAILib.errors import InputError
from MedSegAILib.io import list_series, read_volume
from MedSegAILib.io.dicom_series import GAP_TOLERANCE_FRACTION
from pydicom.uid import generate_uid


def test_slices_are_sorted_along_the_normal_not_by_file_name(cip_series, tmp_path):
    """File names reversed against position: the volume still runs from the lowest slice up."""
    names = sorted(p.name for p in cip_series.iterdir())
    for index, name in enumerate(names):
        shutil.copyfile(cip_series / name, tmp_path / f"slice{len(names) - index:03d}.dcm")
    reference = read_volume(cip_series)
    shuffled = read_volume(tmp_path)
    np.testing.assert_array_equal(shuffled.array, reference.array)
    assert shuffled.same_grid(reference, tolerance=1e-9)
    z = [
        float(pydicom.dcmread(f, stop_before_pixels=True).ImagePositionPatient[2])
        for f in shuffled.metadata["files"]
    ]
    assert z == sorted(z)


def test_oblique_series_gets_its_direction_from_the_orientation_tags(cip_series, tmp_path):
    """IOP rotated by 30 degrees about z and tilted: direction columns = row, column, normal."""
    angle = np.radians(30.0)
    row = np.array([np.cos(angle), np.sin(angle), 0.0])
    column = np.array([-np.sin(angle) * np.cos(0.3), np.cos(angle) * np.cos(0.3), np.sin(0.3)])
    normal = np.cross(row, column)
    origin = np.array([12.5, -40.0, 100.0])
    gap = 2.5

    def rotate(index: int, dataset: pydicom.Dataset) -> None:
        dataset.ImageOrientationPatient = [f"{v:.10f}" for v in (*row, *column)]
        dataset.ImagePositionPatient = [
            f"{v:.6f}" for v in origin + (78 - index) * gap * normal
        ]  # names descend

    copy_series(cip_series, tmp_path, rotate)
    volume = read_volume(tmp_path)
    np.testing.assert_allclose(volume.direction, np.column_stack([row, column, normal]), atol=1e-8)
    np.testing.assert_allclose(volume.origin, origin, atol=1e-5)
    np.testing.assert_allclose(volume.spacing, (4.171872, 4.171872, gap), atol=1e-5)
    reference = read_volume(cip_series)
    np.testing.assert_array_equal(volume.array, reference.array[::-1])  # last file is now the lowest slice
    last = pydicom.dcmread(volume.metadata["files"][-1], stop_before_pixels=True)
    np.testing.assert_allclose(
        volume.ijk_to_lps([0, 0, 78]), np.array(last.ImagePositionPatient, float), atol=1e-5
    )


def test_metadata_keeps_uids_tags_and_the_sorted_file_list(cip_series):
    volume = read_volume(cip_series)
    first = pydicom.dcmread(volume.metadata["files"][0], stop_before_pixels=True)
    meta = volume.metadata
    assert meta["format"] == "dicom"
    assert meta["modality"] == "CT"
    assert meta["series_uid"] == first.SeriesInstanceUID
    assert meta["study_uid"] == first.StudyInstanceUID
    assert meta["frame_of_reference_uid"] == first.FrameOfReferenceUID
    assert len(meta["files"]) == len(meta["sop_instance_uids"]) == 79
    assert meta["sop_instance_uids"][0] == first.SOPInstanceUID
    assert meta["dicom"]["PatientID"] == str(first.get("PatientID", ""))
    assert meta["transfer_syntax_uid"] == "1.2.840.10008.1.2"


def test_one_file_of_a_series_reads_the_whole_series(cip_series):
    folder = read_volume(cip_series)
    one = read_volume(cip_series / "IMG0040.dcm")
    assert one.array.shape == folder.array.shape == (79, 64, 64)
    assert one.same_grid(folder, tolerance=1e-9)


def test_non_dicom_files_beside_the_series_are_ignored(cip_series, tmp_path):
    copy_series(cip_series, tmp_path)
    (tmp_path / "README.txt").write_text("exported by a PACS\n")
    assert read_volume(tmp_path).array.shape == (79, 64, 64)


def test_missing_slice_is_refused(cip_series, tmp_path):
    copy_series(cip_series, tmp_path, drop=[40])
    with pytest.raises(InputError, match=r"missing slice.*IMG0040.dcm and IMG0042.dcm.*about 1 missing"):
        read_volume(tmp_path)


def test_uneven_spacing_is_refused(cip_series, tmp_path):
    def stretch(index: int, dataset: pydicom.Dataset) -> None:
        if index >= 40:  # one gap of 4.99 mm among 3.99 mm gaps: not a whole missing slice
            dataset.ImagePositionPatient[2] = float(dataset.ImagePositionPatient[2]) + 1.0

    copy_series(cip_series, tmp_path, stretch)
    with pytest.raises(InputError, match=r"uneven slice spacing"):
        read_volume(tmp_path)


def test_spacing_jitter_within_the_tolerance_is_accepted(cip_series, tmp_path):
    jitter = 0.5 * GAP_TOLERANCE_FRACTION * 3.987

    def wobble(index: int, dataset: pydicom.Dataset) -> None:
        dataset.ImagePositionPatient[2] = float(dataset.ImagePositionPatient[2]) + (
            jitter if index % 2 else 0.0
        )

    copy_series(cip_series, tmp_path, wobble)
    assert read_volume(tmp_path).array.shape == (79, 64, 64)


def test_mixed_orientations_are_refused(cip_series, tmp_path):
    def coronal(index: int, dataset: pydicom.Dataset) -> None:
        if index == 10:
            dataset.ImageOrientationPatient = [1, 0, 0, 0, 0, -1]

    copy_series(cip_series, tmp_path, coronal)
    with pytest.raises(InputError, match=r"mixed slice orientations.*IMG0011.dcm"):
        read_volume(tmp_path)


def test_gantry_tilt_shear_is_refused(cip_series, tmp_path):
    def tilt(index: int, dataset: pydicom.Dataset) -> None:
        dataset.ImagePositionPatient[1] = float(dataset.ImagePositionPatient[1]) + 0.5 * index

    copy_series(cip_series, tmp_path, tilt)
    with pytest.raises(InputError, match=r"not stacked along their normal"):
        read_volume(tmp_path)


def test_two_slices_at_one_position_are_refused(cip_series, tmp_path):
    copy_series(cip_series, tmp_path)
    duplicate = pydicom.dcmread(tmp_path / "IMG0020.dcm")
    duplicate.SOPInstanceUID = generate_uid()
    duplicate.save_as(tmp_path / "IMG0020b.dcm")
    with pytest.raises(InputError, match=r"several slices at the same position"):
        read_volume(tmp_path)


def test_mr_series_is_refused_naming_the_modality(cip_series, tmp_path):
    copy_series(cip_series, tmp_path, lambda index, dataset: setattr(dataset, "Modality", "MR"))
    with pytest.raises(InputError, match=r"modality is MR, not CT"):
        read_volume(tmp_path)


def _two_series(cip_series, tmp_path):
    """The CIP series plus a 20-slice copy with another SeriesInstanceUID, in one folder."""
    copy_series(cip_series, tmp_path)
    other_uid = generate_uid()

    def relabel(index: int, dataset: pydicom.Dataset) -> None:
        dataset.SeriesInstanceUID = other_uid
        dataset.SeriesDescription = "bone kernel"
        dataset.SOPInstanceUID = generate_uid()

    copies = copy_series(cip_series, tmp_path / "other", relabel, drop=range(20, 79))
    for copy in copies:
        copy.rename(tmp_path / f"B{copy.name}")
    (tmp_path / "other").rmdir()
    original_uid = pydicom.dcmread(cip_series / "IMG0001.dcm", stop_before_pixels=True).SeriesInstanceUID
    return str(original_uid), str(other_uid)


def test_two_series_in_one_folder_are_listed_with_how_to_pick(cip_series, tmp_path):
    original_uid, other_uid = _two_series(cip_series, tmp_path)
    with pytest.raises(InputError) as raised:
        read_volume(tmp_path)
    message = str(raised.value)
    assert "holds 2 DICOM series" in message and "--series UID" in message
    description = pydicom.dcmread(cip_series / "IMG0001.dcm", stop_before_pixels=True).SeriesDescription
    assert f'{original_uid} "{description}" (CT, 79 files)' in message
    assert f'{other_uid} "bone kernel" (CT, 20 files)' in message
    assert "\n" not in message
    assert [s.files for s in list_series(tmp_path)] == [79, 20]


def test_series_option_and_one_file_pick_a_series(cip_series, tmp_path):
    original_uid, other_uid = _two_series(cip_series, tmp_path)
    assert read_volume(tmp_path, series_uid=other_uid).array.shape == (20, 64, 64)
    assert read_volume(tmp_path, series_uid=original_uid).array.shape == (79, 64, 64)
    assert read_volume(tmp_path / "BIMG0005.dcm").metadata["series_uid"] == other_uid
    with pytest.raises(InputError, match=r"no DICOM series with UID 1\.2\.3"):
        read_volume(tmp_path, series_uid="1.2.3")


def test_a_single_slice_is_not_a_volume(cip_series, tmp_path):
    copy_series(cip_series, tmp_path, drop=range(1, 79))
    with pytest.raises(InputError, match=r"only 1 slice"):
        read_volume(tmp_path)


def test_unparseable_dicom_file_is_named(cip_series, tmp_path):
    copy_series(cip_series, tmp_path)
    broken = tmp_path / "IMG0030.dcm"
    broken.write_bytes(broken.read_bytes()[:200])  # preamble + DICM + half the file meta
    with pytest.raises(InputError, match=r"IMG0030.dcm: incomplete DICOM file"):
        read_volume(tmp_path)


def test_truncated_pixel_data_is_named(cip_series, tmp_path):
    copy_series(cip_series, tmp_path)
    broken = tmp_path / "IMG0030.dcm"
    broken.write_bytes(broken.read_bytes()[:-4000])  # header intact, pixels cut short
    with pytest.raises(InputError, match=r"IMG0030.dcm: pixel data cannot be decoded"):
        read_volume(tmp_path)


def test_folders_without_dicom_are_refused(tmp_path):
    with pytest.raises(InputError, match=r"folder is empty"):
        read_volume(tmp_path)
    (tmp_path / "notes.txt").write_text("not an image\n")
    (tmp_path / "series").mkdir()
    with pytest.raises(InputError, match=r"no DICOM files found.*sub-folders are not searched"):
        read_volume(tmp_path)
