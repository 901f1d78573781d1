"""Reading the real CT in ../shared/data: DICOM (plain and JPEG 2000) and NRRD agree, in HU."""

from __future__ import annotations

import numpy as np
import pydicom
import SimpleITK as sitk
from MedSegAILib.io import Volume, read_volume, write_label_map


def test_cip_dicom_series_and_nrrd_have_identical_voxels_and_geometry(shared_data):
    dicom = read_volume(shared_data("cip_lung_ct/ct-64Dicom"))
    nrrd = read_volume(shared_data("cip_lung_ct/ct-64.nrrd"))
    np.testing.assert_array_equal(dicom.array, nrrd.array)
    np.testing.assert_allclose(dicom.spacing, nrrd.spacing, atol=1e-4)
    np.testing.assert_allclose(dicom.direction, nrrd.direction, atol=1e-4)
    # The DICOM headers round ImagePositionPatient to 3 decimals (-128.414 where the NRRD
    # has -128.413806), so the origins differ by up to 3.3e-4 mm: within 1e-4 of a voxel.
    np.testing.assert_allclose(np.subtract(dicom.origin, nrrd.origin) / nrrd.spacing, 0, atol=1e-4)
    corners = np.array([[0, 0, 0], [63, 63, 78], [10, 50, 40]])
    np.testing.assert_allclose(dicom.ijk_to_lps(corners), nrrd.ijk_to_lps(corners), atol=5e-4)


def test_chest_series_is_512x512x141_in_hounsfield_units(shared_data):
    folder = shared_data("chest_ct_dicom")
    volume = read_volume(folder)
    assert volume.shape_ijk == (512, 512, 141)
    np.testing.assert_allclose(volume.spacing, (0.9765625, 0.9765625, 2.0), atol=1e-6)
    # Air outside the body: stored value 0, RescaleIntercept -1024 -> about -1000 HU (not 0).
    assert abs(float(np.median(volume.array[:, :20, :20])) + 1000) < 50
    assert volume.array.min() == -1024.0
    lung_and_tissue = volume.array[70, 200:300, 100:400]
    assert lung_and_tissue.min() < -700 and lung_and_tissue.max() > 0
    # Slices run along +z (feet to head); the first file in the list is the lowest slice.
    files = volume.metadata["files"]
    assert len(files) == 141
    first, last = (pydicom.dcmread(files[i], stop_before_pixels=True) for i in (0, -1))
    np.testing.assert_allclose(volume.origin, np.array(first.ImagePositionPatient, float), atol=1e-6)
    np.testing.assert_allclose(
        volume.ijk_to_lps([0, 0, 140]), np.array(last.ImagePositionPatient, float), atol=1e-6
    )
    assert volume.metadata["series_uid"] == first.SeriesInstanceUID


def test_jpeg2000_series_loads_on_the_grid_of_its_reference_labels(shared_data):
    volume = read_volume(shared_data("totalsegmentator/abdomen_ct_dicom_jpeg2000"))
    assert volume.metadata["transfer_syntax_uid"] == "1.2.840.10008.1.2.4.90"
    assert volume.shape_ijk == (512, 512, 20)
    np.testing.assert_allclose(volume.spacing, (0.9765625, 0.9765625, 2.0), atol=1e-6)
    assert abs(float(np.median(volume.array[:, :20, :20])) + 1000) < 50  # decoded and rescaled
    # TotalSegmentator stored its labels for this series with the j axis flipped: the same
    # voxel centres, indexed (i, 511 - j, k).
    labels = Volume.from_sitk(
        sitk.ReadImage(
            str(shared_data("totalsegmentator/abdomen_ct_dicom_jpeg2000_totalseg_v2_labels.nii.gz"))
        )
    )
    indices = np.array([[0, 0, 0], [511, 511, 19], [100, 300, 7]])
    np.testing.assert_allclose(
        labels.lps_to_ijk(volume.ijk_to_lps(indices)), indices * [1, -1, 1] + [0, 511, 0], atol=1e-3
    )
    organs = np.flip(labels.array, axis=1) > 0
    assert float(np.median(volume.array[organs])) > -100  # labelled organs are soft tissue in our HU
    assert float(np.median(volume.array[~organs])) < -500  # the rest is mostly air around the body


def test_label_map_written_on_the_chest_grid_reads_back_identically(shared_data, tmp_path):
    volume = read_volume(shared_data("chest_ct_dicom"))
    labels = np.zeros(volume.array.shape, np.uint8)
    labels[volume.array < -400] = 1
    labels[60:80, 200:260, 150:220] = 3
    written = write_label_map(labels, volume, tmp_path / "segmentation.nii.gz")
    back = Volume.from_sitk(sitk.ReadImage(str(written)))
    assert back.array.dtype == np.uint8
    np.testing.assert_array_equal(back.array, labels)
    assert back.same_grid(volume, tolerance=1e-5)
