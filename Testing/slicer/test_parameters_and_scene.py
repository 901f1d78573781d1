"""Settings round-trip through a parameter node, and results survive a scene save and reload."""

from __future__ import annotations

import json

import numpy as np
import vtk
from MedSegAILib.io import write_label_map
from MedSegAILib.models.terminology import terminology_for
from MedSegAILib.slicer.findings_nodes import markups_from_findings, read_findings_json, table_from_findings
from MedSegAILib.slicer.outputs import load_segment_outputs
from MedSegAIModule.parameters import Settings, input_volume, job_settings, read_settings, write_settings

CHANGED = Settings(
    model="chest-ct-small",
    device="cuda:1",
    fast=True,
    uncertainty_samples=8,
    gradcam_target="lung nodule",
    threshold=0.35,
    dicom_export=True,
    dicom_folder="/tmp/dicom",
    export_folder="/tmp/meshes",
    export_format="obj",
    export_coords="ras",
    smoothing=5,
    decimation=0.25,
)


def test_settings_round_trip_through_a_parameter_node(scene, ct_node):
    node = scene.AddNewNodeByClass("vtkMRMLScriptedModuleNode", "MedSegAI")
    write_settings(node, CHANGED, ct_node)
    assert read_settings(node) == CHANGED
    assert input_volume(node) is ct_node


def test_an_empty_parameter_node_gives_the_defaults(scene):
    node = scene.AddNewNodeByClass("vtkMRMLScriptedModuleNode", "MedSegAI")
    assert read_settings(node) == Settings()
    assert input_volume(node) is None
    node.SetParameter("MedSegAI.smoothing", "not a number")
    assert read_settings(node).smoothing == Settings().smoothing


def test_dicom_export_applies_only_to_a_volume_loaded_from_dicom():
    chosen = Settings(dicom_export=True, dicom_folder="/tmp/dicom")
    assert job_settings(chosen, from_dicom=True).dicom_export
    assert not job_settings(chosen, from_dicom=False).dicom_export
    assert chosen.dicom_export  # the user's choice is kept for the next DICOM volume
    assert not job_settings(Settings(), from_dicom=True).dicom_export


def _save_with_data(scene, directory) -> str:
    for index in range(scene.GetNumberOfNodes()):
        node = scene.GetNthNode(index)
        if (
            node.IsA("vtkMRMLStorableNode")
            and not node.GetHideFromEditors()
            and node.GetStorageNode() is None
        ):
            if node.AddDefaultStorageNode() and node.GetStorageNode() is not None:
                storage = node.GetStorageNode()
                storage.SetFileName(
                    str(directory / f"{node.GetID()}.{storage.GetDefaultWriteFileExtension()}")
                )
                assert storage.WriteData(node), node.GetID()
    scene.SetURL(str(directory / "scene.mrml"))
    assert scene.Commit()
    return str(directory / "scene.mrml")


def test_settings_and_results_survive_saving_and_reloading_the_scene(
    scene, scene_with_logics, ct_node, ct_grid, tmp_path
):
    labels = np.zeros(ct_grid.array.shape, np.uint8)
    labels[2:4, 2:4, 2:4] = 1
    write_label_map(labels, ct_grid, tmp_path / "segmentation.nii.gz")
    (tmp_path / "labels.json").write_text(
        json.dumps(
            {
                "labels": [
                    {
                        "value": 1,
                        "name": "lung nodule",
                        "color": [255, 0, 0],
                        "terminology": terminology_for("lung nodule"),
                    }
                ]
            }
        )
    )
    load_segment_outputs(tmp_path, ct_node, "chest CT")
    (tmp_path / "findings.json").write_text(
        json.dumps(
            {
                "coordinate_system": "LPS",
                "findings": [
                    {
                        "id": 1,
                        "center": [-1.0, -2.0, 3.0],
                        "diameter_mm": 6.0,
                        "mean_diameter_mm": 5.5,
                        "volume_mm3": 90.0,
                        "score": 0.8,
                        "lung_rads": "2",
                    }
                ],
            }
        )
    )
    findings = read_findings_json(tmp_path / "findings.json")
    markups_from_findings(scene, findings, "findings")
    table_from_findings(scene, findings, "findings table")
    parameters = scene.AddNewNodeByClass("vtkMRMLScriptedModuleNode", "MedSegAI")
    write_settings(parameters, CHANGED, ct_node)
    saved = tmp_path / "saved"
    saved.mkdir()
    url = _save_with_data(scene, saved)

    reloaded = scene_with_logics()
    reloaded.SetURL(url)
    assert reloaded.Connect()

    parameters = reloaded.GetFirstNodeByName("MedSegAI")
    assert read_settings(parameters) == CHANGED
    assert input_volume(parameters).GetName() == "chest CT"
    segmentation_node = reloaded.GetFirstNodeByName("chest CT segmentation")
    segment = segmentation_node.GetSegmentation().GetNthSegment(0)
    assert segment.GetName() == "lung nodule"
    np.testing.assert_allclose(segment.GetColor(), (1.0, 0.0, 0.0))
    markups = reloaded.GetFirstNodeByName("findings")
    np.testing.assert_allclose(markups.GetNthControlPointPosition(0), (1.0, 2.0, 3.0))
    assert reloaded.GetFirstNodeByName("findings table").GetNumberOfRows() == 1


def test_the_terminology_survives_saving_and_reloading(scene, scene_with_logics, ct_node, ct_grid, tmp_path):
    labels = np.zeros(ct_grid.array.shape, np.uint8)
    labels[2:4, 2:4, 2:4] = 1
    write_label_map(labels, ct_grid, tmp_path / "segmentation.nii.gz")
    (tmp_path / "labels.json").write_text(
        json.dumps(
            {
                "labels": [
                    {
                        "value": 1,
                        "name": "lung nodule",
                        "color": [255, 0, 0],
                        "terminology": terminology_for("lung nodule"),
                    }
                ]
            }
        )
    )
    load_segment_outputs(tmp_path, ct_node, "chest CT")
    saved = tmp_path / "saved"
    saved.mkdir()
    reloaded = scene_with_logics()
    reloaded.SetURL(_save_with_data(scene, saved))
    assert reloaded.Connect()

    segment = reloaded.GetFirstNodeByName("chest CT segmentation").GetSegmentation().GetNthSegment(0)
    tag = vtk.reference("")
    assert segment.GetTag(segment.GetTerminologyEntryTagName(), tag)
    assert "SCT^27925004^Nodule" in str(tag)
