"""Uncertainty and Grad-CAM maps -> scalar volume nodes with colour tables, on the input grid."""

from __future__ import annotations

import json

import numpy as np
import pytest
import slicer
import vtk
from MedSegAILib.errors import InputError
from MedSegAILib.io import write_float_map, write_label_map
from MedSegAILib.slicer.map_nodes import flagged_segments
from MedSegAILib.slicer.outputs import load_segment_outputs


@pytest.fixture
def outdir_with_maps(tmp_path, ct_grid):
    shape = ct_grid.array.shape
    labels = np.zeros(shape, np.uint8)
    labels[1:3, 1:3, 1:3] = 1
    write_label_map(labels, ct_grid, tmp_path / "segmentation.nii.gz")
    (tmp_path / "labels.json").write_text(
        json.dumps({"labels": [{"value": 1, "name": "lung nodule", "color": [255, 0, 0]}]})
    )
    ramp = np.linspace(0.0, 0.6, np.prod(shape)).reshape(shape)
    write_float_map(ramp, ct_grid, tmp_path / "uncertainty_entropy.nii.gz")
    write_float_map(ramp / 2, ct_grid, tmp_path / "uncertainty_mutual_information.nii.gz")
    write_float_map(ramp / 0.6, ct_grid, tmp_path / "gradcam_lung_nodule.nii.gz")
    summary = {  # the layout of uncertainty.summary.uncertainty_json (other per-segment keys left out)
        "samples": 8,
        "entropy_threshold": 0.5,
        "needs_review": True,
        "segments": [
            {
                "value": 1,
                "name": "lung nodule",
                "mean_entropy": 0.4,
                "uncertain_fraction": 0.5,
                "needs_review": True,
            },
            {
                "value": 2,
                "name": "left lung",
                "mean_entropy": 0.01,
                "uncertain_fraction": 0.01,
                "needs_review": False,
            },
        ],
    }
    (tmp_path / "uncertainty.json").write_text(json.dumps(summary))
    return tmp_path


def test_maps_become_volumes_on_the_input_grid_with_colour_tables(outdir_with_maps, ct_node, ct_grid):
    outputs = load_segment_outputs(outdir_with_maps, ct_node, "chest CT")

    for node, expected_max in [
        (outputs.entropy, 0.6),
        (outputs.mutual_information, 0.3),
        (outputs.gradcam["lung nodule"], 1.0),
    ]:
        assert node.IsA("vtkMRMLScalarVolumeNode") and not node.IsA("vtkMRMLLabelMapVolumeNode")
        array = slicer.util.arrayFromVolume(node)
        assert array.dtype == np.float32 and array.shape == ct_grid.array.shape
        assert array.max() == pytest.approx(expected_max, rel=1e-5)
        ours, theirs = vtk.vtkMatrix4x4(), vtk.vtkMatrix4x4()
        node.GetIJKToRASMatrix(ours)
        ct_node.GetIJKToRASMatrix(theirs)
        np.testing.assert_allclose(
            [ours.GetElement(r, c) for r in range(4) for c in range(4)],
            [theirs.GetElement(r, c) for r in range(4) for c in range(4)],
            atol=1e-5,
        )
        color = node.GetDisplayNode().GetColorNode()
        assert color.IsA("vtkMRMLColorTableNode") and color.GetNumberOfColors() == 256
    gradcam_display = outputs.gradcam["lung nodule"].GetDisplayNode()
    assert (gradcam_display.GetWindow(), gradcam_display.GetLevel()) == pytest.approx((1.0, 0.5))
    assert outputs.gradcam["lung nodule"].GetDisplayNode().GetColorNode().GetName() == "MedSegAI heat"
    assert outputs.entropy.GetDisplayNode().GetColorNode().GetName() == "MedSegAI uncertainty"


def test_colour_tables_are_shared_not_duplicated(outdir_with_maps, ct_node, scene):
    load_segment_outputs(outdir_with_maps, ct_node, "first")
    load_segment_outputs(outdir_with_maps, ct_node, "second")
    names = [
        scene.GetNthNodeByClass(i, "vtkMRMLColorTableNode").GetName()
        for i in range(scene.GetNumberOfNodesByClass("vtkMRMLColorTableNode"))
    ]
    assert names.count("MedSegAI heat") == 1 and names.count("MedSegAI uncertainty") == 1


def test_segments_flagged_for_review_are_listed(outdir_with_maps, ct_node):
    assert load_segment_outputs(outdir_with_maps, ct_node, "chest CT").flagged == ["lung nodule"]


def test_a_malformed_uncertainty_summary_is_reported(tmp_path):
    path = tmp_path / "uncertainty.json"
    for text in [
        "{}",
        json.dumps({"segments": {"right lung": {"needs_review": True}}}),
        json.dumps({"segments": [{"name": "x"}]}),
    ]:
        path.write_text(text)
        with pytest.raises(InputError, match="not a valid uncertainty.json"):
            flagged_segments(path)


def test_a_plain_run_has_no_maps(outdir_with_maps, ct_node):
    for name in [
        "uncertainty_entropy.nii.gz",
        "uncertainty_mutual_information.nii.gz",
        "gradcam_lung_nodule.nii.gz",
        "uncertainty.json",
    ]:
        (outdir_with_maps / name).unlink()
    outputs = load_segment_outputs(outdir_with_maps, ct_node, "chest CT")
    assert outputs.entropy is None and outputs.gradcam == {} and outputs.flagged == []
