"""DICOM SEG export: what highdicom reads back is the label map, on the source slices, with names
and codes."""

from __future__ import annotations

import highdicom as hd
import numpy as np
import pydicom
import pytest
from MedSegAILib.dicom_out import LabelInfo, read_dicom_seg, write_dicom_seg
from MedSegAILib.dicom_out.source import source_series_of
from MedSegAILib.errors import InputError
from MedSegAILib.io import read_volume

ALGORITHM = ("medsegai-chest-ct", "1.2.0")
# the source CTs carry single-component patient names, which highdicom warns about
pytestmark = pytest.mark.filterwarnings(
    "ignore:The string .* is unlikely to represent the intended person name"
)


def test_seg_read_back_by_highdicom_equals_the_label_map_on_the_source_slices(
    tmp_path, ct64, lung_labels, lung_infos
):
    path = write_dicom_seg(lung_labels, ct64, lung_infos, tmp_path / "seg.dcm", *ALGORITHM)

    seg = hd.seg.segread(path)
    uids = source_series_of(ct64).sop_instance_uids
    read_back = seg.get_pixels_by_source_instance(
        uids, combine_segments=True, assert_missing_frames_are_empty=True
    )
    np.testing.assert_array_equal(read_back, lung_labels)
    assert seg.SegmentationType == "BINARY"
    assert seg.segment_numbers == [1, 2, 3]


def test_seg_references_the_source_series_study_and_frame_of_reference(
    tmp_path, ct64, lung_labels, lung_infos
):
    path = write_dicom_seg(lung_labels, ct64, lung_infos, tmp_path / "seg.dcm", *ALGORITHM)

    seg = pydicom.dcmread(path)
    assert seg.SOPClassUID == "1.2.840.10008.5.1.4.1.1.66.4"
    assert [str(s.SeriesInstanceUID) for s in seg.ReferencedSeriesSequence] == [ct64.metadata["series_uid"]]
    referenced = {
        str(i.ReferencedSOPInstanceUID) for i in seg.ReferencedSeriesSequence[0].ReferencedInstanceSequence
    }
    assert referenced == set(ct64.metadata["sop_instance_uids"])
    assert seg.StudyInstanceUID == ct64.metadata["study_uid"]
    assert seg.FrameOfReferenceUID == ct64.metadata["frame_of_reference_uid"]
    assert seg.SeriesInstanceUID != ct64.metadata["series_uid"]


def test_each_segment_keeps_name_snomed_codes_algorithm_and_colour(tmp_path, ct64, lung_labels, lung_infos):
    path = write_dicom_seg(lung_labels, ct64, lung_infos, tmp_path / "seg.dcm", *ALGORITHM)

    seg = hd.seg.segread(path)
    for number, info in enumerate(lung_infos, start=1):
        description = seg.get_segment_description(number)
        assert description.segment_label == info.name
        assert description.segmented_property_category.value == info.terminology["category"]["code"]
        assert description.segmented_property_category.scheme_designator == "SCT"
        assert description.segmented_property_type.value == info.terminology["type"]["code"]
        assert description.segmented_property_type.meaning == info.terminology["type"]["meaning"]
        assert description.algorithm_type == hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC
        algorithm = description.algorithm_identification[0]
        assert (algorithm.AlgorithmName, algorithm.AlgorithmVersion) == ALGORITHM
        rgb = hd.color.CIELabColor.from_dicom_value(description.RecommendedDisplayCIELabValue).to_rgb(
            clip=True
        )
        assert np.abs(np.subtract(rgb, info.color)).max() <= 1


def test_frames_follow_slice_positions_not_file_order(tmp_path, ct3):
    """ct-3slice lists its files in reverse slice order: frame positions must still match array[k]."""
    labels = np.zeros(ct3.array.shape, dtype=np.uint8)
    for k in range(labels.shape[0]):  # a different, recognisable square on each slice
        labels[k, 10 * k : 10 * k + 20, 50:90] = k + 1
    infos = [LabelInfo(k + 1, f"slice {k} mark", (200, 40 * k, 40)) for k in range(3)]

    seg = hd.seg.segread(write_dicom_seg(labels, ct3, infos, tmp_path / "seg.dcm", *ALGORITHM))

    for frame in seg.PerFrameFunctionalGroupsSequence:
        number = int(frame.SegmentIdentificationSequence[0].ReferencedSegmentNumber)
        k = number - 1
        position = np.asarray(frame.PlanePositionSequence[0].ImagePositionPatient, dtype=float)
        np.testing.assert_allclose(position, ct3.ijk_to_lps(np.array([0.0, 0.0, k])), atol=1e-3)
        source_uid = frame.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID
        assert source_uid == ct3.metadata["sop_instance_uids"][k]


def test_our_importer_reads_our_seg_back_with_names_colours_and_codes(
    tmp_path, ct64, lung_labels, lung_infos
):
    path = write_dicom_seg(lung_labels, ct64, lung_infos, tmp_path / "seg.dcm", *ALGORITHM)

    imported = read_dicom_seg(path, ct64)

    np.testing.assert_array_equal(imported.labels, lung_labels)
    for got, wanted in zip(imported.label_infos, lung_infos):
        assert (got.value, got.name, got.terminology) == (wanted.value, wanted.name, wanted.terminology)
        assert np.abs(np.subtract(got.color, wanted.color)).max() <= 1


def test_non_contiguous_label_values_become_consecutive_segments(tmp_path, ct64, lung_labels, lung_infos):
    labels = np.where(lung_labels == 3, 7, lung_labels).astype(np.uint8)
    infos = lung_infos[:2] + [LabelInfo(7, "trachea", (182, 228, 255), lung_infos[2].terminology)]

    seg = hd.seg.segread(write_dicom_seg(labels, ct64, infos, tmp_path / "seg.dcm", *ALGORITHM))

    assert seg.get_segment_description(3).segment_label == "trachea"
    read_back = seg.get_pixels_by_source_instance(ct64.metadata["sop_instance_uids"], combine_segments=True)
    np.testing.assert_array_equal(read_back == 3, labels == 7)


def test_input_that_was_not_dicom_is_refused(tmp_path, shared_data, lung_labels, lung_infos):
    nrrd = read_volume(shared_data("cip_lung_ct/ct-64.nrrd"))

    with pytest.raises(InputError, match="needs a DICOM series"):
        write_dicom_seg(lung_labels, nrrd, lung_infos, tmp_path / "seg.dcm", *ALGORITHM)
    assert not (tmp_path / "seg.dcm").exists()


def test_a_label_value_without_a_name_is_refused(tmp_path, ct64, lung_labels, lung_infos):
    with pytest.raises(InputError, match=r"label values \[3\] have no name"):
        write_dicom_seg(lung_labels, ct64, lung_infos[:2], tmp_path / "seg.dcm", *ALGORITHM)
