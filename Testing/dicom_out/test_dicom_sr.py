"""DICOM SR (TID 1500) for findings: it parses, and holds every finding's centre and values."""

from __future__ import annotations

import highdicom as hd
import numpy as np
import pydicom
import pytest
from MedSegAILib.dicom_out import LabelInfo, write_dicom_seg, write_dicom_sr
from MedSegAILib.dicom_out.sr import LOCAL_SCHEME
from MedSegAILib.errors import InputError
from pydicom.sr.codedict import codes

pytestmark = pytest.mark.filterwarnings(
    "ignore:The string .* is unlikely to represent the intended person name"
)

FINDINGS = {
    "coordinate_system": "LPS",
    "units": "mm",
    "findings": [
        {
            "id": 1,
            "center": [-50.5, -120.25, -200.0],
            "diameter_mm": 12.3,
            "long_axis_mm": 12.3,
            "short_axis_mm": 9.1,
            "mean_diameter_mm": 10.7,
            "volume_mm3": 850.2,
            "score": 0.93,
            "bbox": [[-56.0, -126.0, -206.0], [-45.0, -114.0, -194.0]],
            "lung_rads": "4A",
        },
        {
            "id": 2,
            "center": [30.0, -100.0, -250.5],
            "diameter_mm": 5.0,
            "volume_mm3": 60.0,
            "score": 0.41,
            "bbox": [[28.0, -102.0, -252.0], [32.0, -98.0, -249.0]],
        },
    ],
}


def _groups(path):
    report = hd.sr.srread(path)
    return report, report.content.get_volumetric_roi_measurement_groups()


def _values(group):
    """{(name meaning, derivation meaning or None): (value, unit code)}"""
    return {
        (m.name.meaning, m.derivation.meaning if m.derivation else None): (m.value, m.unit.value)
        for m in group.get_measurements()
    }


def test_sr_is_a_tid1500_comprehensive_3d_report_that_pydicom_reads(tmp_path, ct64):
    path = write_dicom_sr(FINDINGS, ct64, tmp_path / "sr.dcm", "medsegai-nodules", "1.0")

    dataset = pydicom.dcmread(path)
    assert dataset.SOPClassUID == "1.2.840.10008.5.1.4.1.1.88.34"  # Comprehensive 3D SR
    assert dataset.ContentTemplateSequence[0].TemplateIdentifier == "1500"
    assert dataset.ConceptNameCodeSequence[0].CodeValue == "126000"  # Imaging Measurement Report
    assert dataset.StudyInstanceUID == ct64.metadata["study_uid"]


def test_every_finding_has_its_centre_as_a_3d_point_in_the_series_frame_of_reference(tmp_path, ct64):
    _, groups = _groups(write_dicom_sr(FINDINGS, ct64, tmp_path / "sr.dcm", "medsegai-nodules", "1.0"))

    assert [g.tracking_identifier for g in groups] == ["finding 1", "finding 2"]
    for group, finding in zip(groups, FINDINGS["findings"]):
        surface = group.roi
        point = surface[0]
        assert point.graphic_type == hd.sr.GraphicTypeValues3D.POINT
        assert point.ReferencedFrameOfReferenceUID == ct64.metadata["frame_of_reference_uid"]
        np.testing.assert_allclose(point.value.ravel(), finding["center"], atol=1e-4)
        series = [item for item in surface if item.name == codes.DCM.SourceSeriesForSegmentation]
        assert series[0].value == ct64.metadata["series_uid"]
        assert group.finding_type == codes.SCT.Nodule


def test_every_finding_holds_diameter_volume_score_and_lung_rads(tmp_path, ct64):
    _, groups = _groups(write_dicom_sr(FINDINGS, ct64, tmp_path / "sr.dcm", "medsegai-nodules", "1.0"))

    first, second = (_values(g) for g in groups)
    assert first[("Diameter", None)] == pytest.approx((12.3, "mm"))
    assert first[("Long axis", None)] == pytest.approx((12.3, "mm"))
    assert first[("Short axis", None)] == pytest.approx((9.1, "mm"))
    assert first[("Diameter", "Mean")] == pytest.approx((10.7, "mm"))
    assert first[("Volume", None)] == pytest.approx((850.2, "mm3"))
    assert first[("Certainty of Finding", None)] == pytest.approx((93.0, "%"))
    assert second[("Diameter", None)] == pytest.approx((5.0, "mm"))
    assert second[("Certainty of Finding", None)] == pytest.approx((41.0, "%"))
    assert ("Long axis", None) not in second

    rads = [q for q in groups[0].get_qualitative_evaluations() if q.name.value == "LUNGRADS"]
    assert (
        len(rads) == 1
        and rads[0].value.value == "LUNGRADS-4A"
        and rads[0].value.scheme_designator == LOCAL_SCHEME
    )
    assert not [q for q in groups[1].get_qualitative_evaluations() if q.name.value == "LUNGRADS"]


def test_sr_references_the_ct_series_and_the_seg(tmp_path, ct64, lung_labels, lung_infos):
    seg_path = write_dicom_seg(
        lung_labels, ct64, lung_infos, tmp_path / "seg.dcm", "medsegai-chest-ct", "1.0"
    )
    sr_path = write_dicom_sr(
        FINDINGS, ct64, tmp_path / "sr.dcm", "medsegai-nodules", "1.0", segmentation_path=seg_path
    )

    evidence = pydicom.dcmread(sr_path).CurrentRequestedProcedureEvidenceSequence[0].ReferencedSeriesSequence
    by_series = {
        str(s.SeriesInstanceUID): {str(i.ReferencedSOPInstanceUID) for i in s.ReferencedSOPSequence}
        for s in evidence
    }
    seg = pydicom.dcmread(seg_path, stop_before_pixels=True)
    assert by_series[ct64.metadata["series_uid"]] == set(ct64.metadata["sop_instance_uids"])
    assert by_series[str(seg.SeriesInstanceUID)] == {str(seg.SOPInstanceUID)}


def test_no_findings_give_a_report_that_says_nodule_absent(tmp_path, ct64):
    empty = {"coordinate_system": "LPS", "units": "mm", "findings": []}

    report, groups = _groups(write_dicom_sr(empty, ct64, tmp_path / "sr.dcm", "medsegai-nodules", "1.0"))

    assert groups == []
    [group] = report.content.get_image_measurement_groups()
    [evaluation] = [q for q in group.get_qualitative_evaluations() if q.name == codes.SCT.Nodule]
    assert evaluation.value == codes.SCT.Absent


def test_a_seg_of_another_series_is_refused(tmp_path, ct64, ct3):
    labels = np.zeros(ct3.array.shape, dtype=np.uint8)
    labels[:, 100:120, 100:120] = 1
    other = write_dicom_seg(labels, ct3, [LabelInfo(1, "lung nodule")], tmp_path / "other.dcm", "m", "1")

    with pytest.raises(InputError, match="not made on series"):
        write_dicom_sr(
            FINDINGS, ct64, tmp_path / "sr.dcm", "medsegai-nodules", "1.0", segmentation_path=other
        )
    assert not (tmp_path / "sr.dcm").exists()


def test_findings_not_in_lps_millimetres_or_missing_values_are_refused(tmp_path, ct64):
    with pytest.raises(InputError, match="LPS millimetres"):
        write_dicom_sr({**FINDINGS, "coordinate_system": "RAS"}, ct64, tmp_path / "sr.dcm", "m", "1")
    broken = {"findings": [{"id": 1, "center": [0, 0, 0], "diameter_mm": 4.0, "score": 0.5}]}
    with pytest.raises(InputError, match="finding 1 lacks"):
        write_dicom_sr(broken, ct64, tmp_path / "sr.dcm", "m", "1")
