"""A segmentation edited on a real MRML scene, saved as a corrections case."""

from __future__ import annotations

import json

import numpy as np
import pytest
import SimpleITK as sitk

slicer = pytest.importorskip("slicer", reason="needs slicer-core (pip install slicer-core)")
import vtk  # noqa: E402  (comes with slicer-core)
from MedSegAILib.io import Volume, write_json, write_label_map  # noqa: E402
from MedSegAILib.models.card import read_labels_json  # noqa: E402
from MedSegAILib.slicer.correction_export import remember_prediction, save_correction  # noqa: E402
from MedSegAILib.slicer.dicom_source import INSTANCE_UIDS_ATTRIBUTE  # noqa: E402
from MedSegAILib.slicer.segmentation_nodes import segmentation_from_label_map  # noqa: E402
from MedSegAILib.slicer.volume_nodes import set_node_geometry  # noqa: E402

MODEL = {"name": "chest_ct", "version": "1.0.0", "weights_sha256": "12" * 32}
SERIES_UID = "1.2.826.0.1.3680043.8.498.1"


@pytest.fixture
def prediction(oblique_ct) -> np.ndarray:
    labels = np.zeros(oblique_ct.array.shape, np.uint8)
    labels[1:5, 2:8, 2:6] = 1  # left lung: 96 voxels
    labels[1:5, 2:8, 8:12] = 2  # right lung: 96 voxels
    return labels


@pytest.fixture
def loaded(mrml_scene, tmp_path, oblique_ct, prediction, model_labels):
    """The CT as Slicer's DICOM module leaves it, and the model's segmentation loaded onto it."""
    ct_node = mrml_scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "chest CT")
    set_node_geometry(ct_node, oblique_ct.with_array(oblique_ct.array.astype(np.int16)))
    ct_node.SetAttribute(INSTANCE_UIDS_ATTRIBUTE, "1.2.3.1 1.2.3.2 1.2.3.3")
    hierarchy = slicer.vtkMRMLSubjectHierarchyNode.GetSubjectHierarchyNode(mrml_scene)
    hierarchy.SetItemUID(hierarchy.CreateItem(hierarchy.GetSceneItemID(), ct_node), "DICOM", SERIES_UID)
    write_label_map(prediction, oblique_ct, tmp_path / "segment" / "segmentation.nii.gz")
    write_json(tmp_path / "segment" / "labels.json", {"labels": [info.to_json() for info in model_labels]})
    segmentation = segmentation_from_label_map(
        tmp_path / "segment" / "segmentation.nii.gz", model_labels, ct_node, "chest CT segmentation"
    )
    return ct_node, segmentation


def edit_segment(segmentation_node, name: str, ct_node, change) -> None:
    """Edit one segment's binary labelmap on the CT grid and set it back, as a Segment Editor effect does
    (slicer.util's array helpers need the full application; this uses the same logic calls)."""
    logic = slicer.vtkSlicerSegmentationsModuleLogic
    segment_id = segmentation_node.GetSegmentation().GetSegmentIdBySegmentName(name)
    scene = ct_node.GetScene()
    labelmap = scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode", "edit")
    ids = vtk.vtkStringArray()
    ids.InsertNextValue(segment_id)
    assert logic.ExportSegmentsToLabelmapNode(segmentation_node, ids, labelmap, ct_node)
    mask = (slicer.util.arrayFromVolume(labelmap) > 0).astype(np.uint8)
    change(mask)
    slicer.util.updateVolumeFromArray(labelmap, mask)
    assert logic.SetBinaryLabelmapToSegment(
        logic.CreateOrientedImageDataFromVolumeNode(labelmap),
        segmentation_node,
        segment_id,
        logic.MODE_REPLACE,
    )
    scene.RemoveNode(labelmap)


def stored_by_name(case) -> dict[str, np.ndarray]:
    array = sitk.GetArrayFromImage(sitk.ReadImage(str(case.folder / "labels.nii.gz")))
    return {info.name: array == info.value for info in read_labels_json(case.folder / "labels.json")}


def test_an_edited_segmentation_is_stored_with_its_changes_against_the_prediction(
    tmp_path, loaded, oblique_ct, prediction
):
    ct_node, segmentation = loaded
    remember_prediction(segmentation, ct_node, MODEL)

    def remove_slab(mask):
        mask[4] = 0  # 24 voxels of left lung

    def paint_nodule(mask):
        mask[2:4, 4:6, 9:11] = 1  # 8 voxels, inside the right lung

    def grow_right_lung(mask):
        mask[5, 2:8, 8:12] = 1  # 24 voxels added below

    edit_segment(segmentation, "left lung", ct_node, remove_slab)
    edit_segment(segmentation, "lung nodule", ct_node, paint_nodule)
    edit_segment(segmentation, "right lung", ct_node, grow_right_lung)
    case = save_correction(segmentation, ct_node, store=tmp_path / "store", author="tester")

    stored = stored_by_name(case)
    expected_left = prediction == 1
    expected_left[4] = False
    np.testing.assert_array_equal(stored["left lung"], expected_left)
    nodule = np.zeros_like(expected_left)
    nodule[2:4, 4:6, 9:11] = True
    np.testing.assert_array_equal(stored["lung nodule"], nodule)
    right = prediction == 2
    right[5, 2:8, 8:12] = True
    np.testing.assert_array_equal(
        stored["right lung"], right & ~nodule
    )  # the nodule segment comes later and wins
    image = Volume.from_sitk(sitk.ReadImage(str(case.folder / "image.nii.gz")))
    assert image.same_grid(oblique_ct, tolerance=1e-5)
    np.testing.assert_array_equal(image.array, oblique_ct.array)

    record = json.loads((case.folder / "case.json").read_text())
    voxel = 0.7 * 0.9 * 2.5
    assert record["model"] == MODEL and record["author"] == "tester"
    assert record["source"] == {"node": "chest CT", "series_uid": SERIES_UID, "dicom_instances": 3}
    changes = record["changes"]
    assert changes["left lung"]["removed_mm3"] == pytest.approx(24 * voxel, abs=1e-3)
    assert changes["left lung"]["added_mm3"] == 0.0
    assert changes["left lung"]["dice"] == pytest.approx(2 * 72 / (96 + 72), abs=1e-6)
    assert changes["right lung"]["added_mm3"] == pytest.approx(24 * voxel, abs=1e-3)
    assert changes["right lung"]["removed_mm3"] == pytest.approx(8 * voxel, abs=1e-3)  # now nodule
    assert changes["lung nodule"] == pytest.approx(
        {
            "original_mm3": 0.0,
            "corrected_mm3": 8 * voxel,
            "added_mm3": 8 * voxel,
            "removed_mm3": 0.0,
            "dice": 0.0,
        },
        abs=1e-3,
    )


def test_the_remembered_prediction_is_a_hidden_label_map_that_edits_do_not_touch(loaded, prediction):
    ct_node, segmentation = loaded
    node = remember_prediction(segmentation, ct_node)

    edit_segment(segmentation, "left lung", ct_node, lambda mask: mask.fill(0))

    assert node.GetHideFromEditors() and segmentation.GetNodeReference("MedSegAIOriginalPrediction") is node
    np.testing.assert_array_equal(slicer.util.arrayFromVolume(node), prediction)


def test_without_a_remembered_prediction_the_case_has_no_change_statistics(tmp_path, loaded):
    ct_node, segmentation = loaded
    case = save_correction(segmentation, ct_node, store=tmp_path / "store")
    assert case.record["changes"] is None and case.record["model"] is None
    assert case.record["labels"] == ["left lung", "right lung", "lung nodule"]
