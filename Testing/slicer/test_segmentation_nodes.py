"""CONTRACT segmentation outputs -> a segmentation node with names, colours, terminology, geometry."""

from __future__ import annotations

import json

import numpy as np
import pytest
import slicer
import vtk
from MedSegAILib.errors import InputError
from MedSegAILib.io import write_label_map
from MedSegAILib.models.card import read_labels_json
from MedSegAILib.models.terminology import slicer_terminology_string, terminology_for
from MedSegAILib.slicer.outputs import load_segment_outputs
from MedSegAILib.slicer.segmentation_nodes import write_segmentation_label_map
from MedSegAILib.slicer.volume_nodes import read_output_image

LABELS = {
    "labels": [
        {
            "value": 1,
            "name": "left lung",
            "color": [128, 174, 128],
            "terminology": terminology_for("left lung"),
        },
        {
            "value": 2,
            "name": "right lung",
            "color": [241, 214, 145],
            "terminology": terminology_for("right lung"),
        },
        {
            "value": 3,
            "name": "lung nodule",
            "color": [255, 0, 0],
            "terminology": terminology_for("lung nodule"),
        },
    ]
}


@pytest.fixture
def label_array(ct_grid) -> np.ndarray:
    labels = np.zeros(ct_grid.array.shape, np.uint8)
    labels[1:4, 1:3, 1:4] = 1
    labels[1:4, 4:6, 4:7] = 2
    labels[2, 3, 5] = 3  # one voxel at k=2, j=3, i=5
    return labels


@pytest.fixture
def segment_outdir(tmp_path, ct_grid, label_array):
    write_label_map(label_array, ct_grid, tmp_path / "segmentation.nii.gz")
    (tmp_path / "labels.json").write_text(json.dumps(LABELS))
    return tmp_path


def segments_by_name(segmentation_node) -> dict:
    segmentation = segmentation_node.GetSegmentation()
    return {
        segmentation.GetNthSegment(i).GetName(): segmentation.GetNthSegmentID(i)
        for i in range(segmentation.GetNumberOfSegments())
    }


def segment_array(segmentation_node, segment_id, reference_node) -> np.ndarray:
    """The segment's voxels resampled on the reference volume's grid, via Slicer's export."""
    scene = reference_node.GetScene()
    labelmap = scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode")
    ids = vtk.vtkStringArray()
    ids.InsertNextValue(segment_id)
    assert slicer.vtkSlicerSegmentationsModuleLogic.ExportSegmentsToLabelmapNode(
        segmentation_node, ids, labelmap, reference_node
    )
    return slicer.util.arrayFromVolume(labelmap).copy()


def test_every_label_becomes_a_named_coloured_segment_with_terminology(segment_outdir, ct_node):
    outputs = load_segment_outputs(segment_outdir, ct_node, "chest CT")

    node = outputs.segmentation
    assert node.GetName() == "chest CT segmentation"
    segmentation = node.GetSegmentation()
    names = segments_by_name(node)
    assert list(names) == ["left lung", "right lung", "lung nodule"]
    nodule = segmentation.GetSegment(names["lung nodule"])
    np.testing.assert_allclose(nodule.GetColor(), (1.0, 0.0, 0.0))
    np.testing.assert_allclose(
        segmentation.GetSegment(names["left lung"]).GetColor(), np.array([128, 174, 128]) / 255
    )
    tag = vtk.reference("")
    assert nodule.GetTag(nodule.GetTerminologyEntryTagName(), tag)
    tag = str(tag)
    assert tag == slicer_terminology_string(terminology_for("lung nodule"))
    assert "SCT^27925004^Nodule" in tag
    assert node.GetDisplayNode() is not None


def test_segments_keep_the_voxels_and_the_input_geometry(segment_outdir, ct_node, label_array):
    node = load_segment_outputs(segment_outdir, ct_node, "chest CT").segmentation

    assert node.GetNodeReference(node.GetReferenceImageGeometryReferenceRole()) is ct_node
    for value, name in [(1, "left lung"), (2, "right lung"), (3, "lung nodule")]:
        exported = segment_array(node, segments_by_name(node)[name], ct_node)
        np.testing.assert_array_equal(exported > 0, label_array == value)


def test_a_label_voxel_maps_to_the_same_ras_point(segment_outdir, ct_node, ct_grid):
    node = load_segment_outputs(segment_outdir, ct_node, "chest CT").segmentation
    nodule_id = segments_by_name(node)["lung nodule"]
    oriented = slicer.vtkOrientedImageData()
    node.GetBinaryLabelmapRepresentation(nodule_id, oriented)
    image_to_world = vtk.vtkMatrix4x4()
    oriented.GetImageToWorldMatrix(image_to_world)
    extent = oriented.GetExtent()
    voxels = [
        (i, j, k)
        for k in range(extent[4], extent[5] + 1)
        for j in range(extent[2], extent[3] + 1)
        for i in range(extent[0], extent[1] + 1)
        if oriented.GetScalarComponentAsDouble(i, j, k, 0) > 0
    ]
    assert len(voxels) == 1
    ras = np.array(image_to_world.MultiplyPoint((*voxels[0], 1.0))[:3])
    lps = ct_grid.ijk_to_lps(np.array([5, 3, 2]))
    np.testing.assert_allclose(ras, [-lps[0], -lps[1], lps[2]], atol=1e-3)


def test_a_named_label_without_voxels_is_an_empty_segment_to_paint(
    segment_outdir, ct_node, ct_grid, label_array
):
    label_array[label_array == 3] = 0
    write_label_map(label_array, ct_grid, segment_outdir / "segmentation.nii.gz")

    node = load_segment_outputs(segment_outdir, ct_node, "chest CT").segmentation
    assert list(segments_by_name(node)) == ["left lung", "right lung", "lung nodule"]


def test_missing_outputs_are_reported_in_one_line(tmp_path, ct_node):
    with pytest.raises(InputError, match="segmentation.nii.gz: segmentation is missing"):
        load_segment_outputs(tmp_path, ct_node, "chest CT")


def test_an_edited_segmentation_is_written_back_as_a_contract_label_map(
    segment_outdir, ct_node, ct_grid, label_array, tmp_path
):
    node = load_segment_outputs(segment_outdir, ct_node, "chest CT").segmentation
    node.GetSegmentation().RemoveSegment(segments_by_name(node)["left lung"])

    labels = write_segmentation_label_map(node, ct_node, tmp_path / "edited.nii.gz", tmp_path / "edited.json")

    assert [(label.value, label.name) for label in labels] == [(1, "right lung"), (2, "lung nodule")]
    assert [label.name for label in read_labels_json(tmp_path / "edited.json")] == [
        "right lung",
        "lung nodule",
    ]
    written = read_output_image(tmp_path / "edited.nii.gz")
    assert written.same_grid(ct_grid, tolerance=1e-4)
    np.testing.assert_array_equal(written.array == 1, label_array == 2)
    np.testing.assert_array_equal(written.array == 2, label_array == 3)
