"""DICOM SEG import: liver.dcm lands on its CT voxel for voxel; a SEG that does not fit is refused."""

from __future__ import annotations

import json

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from MedSegAILib.cli.main import main
from MedSegAILib.dicom_out import LabelInfo, read_dicom_seg, write_dicom_seg
from MedSegAILib.errors import InputError

pytestmark = pytest.mark.filterwarnings(
    "ignore:The string .* is unlikely to represent the intended person name"
)


def _nrrd(path):
    return sitk.GetArrayFromImage(sitk.ReadImage(str(path)))


def test_liver_seg_imports_onto_its_ct_voxel_for_voxel(shared_data, ct3):
    imported = read_dicom_seg(shared_data("dicom_seg/liver.dcm"), ct3)

    expected = _nrrd(shared_data("dicom_seg/liver_seg.nrrd"))
    assert imported.labels.shape == ct3.array.shape
    np.testing.assert_array_equal(imported.labels, expected)
    [liver] = imported.label_infos
    assert (liver.value, liver.name) == (1, "Liver")
    assert liver.terminology["type"] == {"scheme": "SRT", "code": "T-62000", "meaning": "Liver"}
    assert liver.terminology["category"]["meaning"] == "Tissue"
    assert all(0 <= c <= 255 for c in liver.color) and liver.color[0] > liver.color[2]  # reddish, from CIELab


def test_a_seg_of_another_series_is_refused_with_both_series_named(
    tmp_path, shared_data, ct3, ct64, lung_labels, lung_infos
):
    other = write_dicom_seg(lung_labels, ct64, lung_infos, tmp_path / "lungs.dcm", "m", "1")

    with pytest.raises(InputError) as error:
        read_dicom_seg(other, ct3)
    message = str(error.value)
    assert ct64.metadata["series_uid"] in message and ct3.metadata["series_uid"] in message
    assert "give the CT series the SEG was made on" in message


def test_a_seg_whose_frames_are_not_on_the_referenced_slices_is_refused(tmp_path, shared_data, ct3):
    shifted = pydicom.dcmread(shared_data("dicom_seg/liver.dcm"))
    position = shifted.PerFrameFunctionalGroupsSequence[1].PlanePositionSequence[0]
    position.ImagePositionPatient = [
        float(v) + (5.0 if axis == 2 else 0.0) for axis, v in enumerate(position.ImagePositionPatient)
    ]
    shifted.save_as(tmp_path / "shifted.dcm")

    with pytest.raises(InputError, match="frame 2 lies at .* not on the CT slice it references"):
        read_dicom_seg(tmp_path / "shifted.dcm", ct3)


def test_a_file_that_is_not_a_seg_is_refused(shared_data, ct3):
    with pytest.raises(InputError, match="not a readable DICOM Segmentation"):
        read_dicom_seg(shared_data("dicom_seg/ct-3slice/01.dcm"), ct3)


def test_import_seg_command_writes_label_map_and_labels_on_the_ct_grid(tmp_path, shared_data, ct3):
    out = tmp_path / "out"

    code = main(
        [
            "import-seg",
            str(shared_data("dicom_seg/liver.dcm")),
            "--reference",
            str(shared_data("dicom_seg/ct-3slice")),
            "-o",
            str(out),
            "--quiet",
        ]
    )

    assert code == 0
    image = sitk.ReadImage(str(out / "segmentation.nii.gz"))
    np.testing.assert_array_equal(
        sitk.GetArrayFromImage(image), _nrrd(shared_data("dicom_seg/liver_seg.nrrd"))
    )
    np.testing.assert_allclose(image.GetOrigin(), ct3.origin, atol=1e-4)
    np.testing.assert_allclose(image.GetSpacing(), ct3.spacing, atol=1e-4)
    labels = json.loads((out / "labels.json").read_text())["labels"]
    assert [(entry["value"], entry["name"]) for entry in labels] == [(1, "Liver")]
    assert labels[0]["terminology"]["type"]["code"] == "T-62000" and len(labels[0]["color"]) == 3


def test_import_seg_command_refuses_a_mismatched_series_with_exit_code_2_and_no_output(
    tmp_path, shared_data, capsys
):
    out = tmp_path / "out"

    code = main(
        [
            "import-seg",
            str(shared_data("dicom_seg/liver.dcm")),
            "--reference",
            str(shared_data("cip_lung_ct/ct-64Dicom")),
            "-o",
            str(out),
        ]
    )

    assert code == 2
    assert "references series" in capsys.readouterr().err
    assert not out.exists()


def test_round_trip_keeps_segment_numbers_names_and_voxels_on_the_3_slice_ct(tmp_path, ct3):
    labels = np.zeros(ct3.array.shape, dtype=np.uint8)
    labels[0, 200:260, 100:180] = 1
    labels[2, 300:320, 300:330] = 2
    infos = [LabelInfo(1, "left lung", (10, 200, 30)), LabelInfo(2, "lung nodule", (250, 250, 0))]

    imported = read_dicom_seg(write_dicom_seg(labels, ct3, infos, tmp_path / "seg.dcm", "m", "1"), ct3)

    np.testing.assert_array_equal(imported.labels, labels)
    assert [(i.value, i.name) for i in imported.label_infos] == [(1, "left lung"), (2, "lung nodule")]
    assert imported.label_infos[1].terminology["type"]["meaning"] == "Nodule"
