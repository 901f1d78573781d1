"""CONTRACT findings (LPS) -> markups points and a table node (RAS = LPS with x, y negated)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from MedSegAILib.errors import InputError
from MedSegAILib.io import write_label_map
from MedSegAILib.slicer.findings_nodes import TABLE_COLUMNS
from MedSegAILib.slicer.outputs import load_detect_outputs

FINDINGS = {
    "coordinate_system": "LPS",
    "units": "mm",
    "findings": [
        {"id": 1, "center": [-100.0, 40.0, -195.0], "diameter_mm": 8.5, "volume_mm3": 310.0, "score": 0.93,
         "bbox": [[-104, 36, -199], [-96, 44, -191]], "lung_rads": "4A"},
        {"id": 2, "center": [-115.5, 33.0, -190.0], "diameter_mm": 4.0, "volume_mm3": 30.0, "score": 0.41,
         "bbox": [[-117, 31, -192], [-114, 35, -188]], "uncertainty": 0.2},
    ],
}


@pytest.fixture
def detect_outdir(tmp_path, ct_grid):
    nodules = np.zeros(ct_grid.array.shape, np.uint8)
    nodules[2, 2:4, 2:4] = 1
    nodules[4, 5, 6] = 2
    write_label_map(nodules, ct_grid, tmp_path / "nodules.nii.gz")
    (tmp_path / "findings.json").write_text(json.dumps(FINDINGS))
    return tmp_path


def test_each_finding_is_a_locked_point_at_its_ras_position(detect_outdir, ct_node):
    outputs = load_detect_outputs(detect_outdir, ct_node, "chest CT")

    markups = outputs.markups
    assert markups.IsA("vtkMRMLMarkupsFiducialNode")
    assert markups.GetNumberOfControlPoints() == 2
    np.testing.assert_allclose(markups.GetNthControlPointPosition(0), (100.0, -40.0, -195.0))
    np.testing.assert_allclose(markups.GetNthControlPointPosition(1), (115.5, -33.0, -190.0))
    assert markups.GetNthControlPointLabel(0) == "N1 0.93"
    assert markups.GetNthControlPointLocked(0)


def test_the_table_lists_centre_size_score_and_lung_rads(detect_outdir, ct_node):
    table = load_detect_outputs(detect_outdir, ct_node, "chest CT").table

    assert table.GetNumberOfRows() == 2
    assert [table.GetColumnName(c) for c in range(table.GetNumberOfColumns())] == list(TABLE_COLUMNS)
    vtk_table = table.GetTable()
    row = [vtk_table.GetValue(0, c).ToString() for c in range(vtk_table.GetNumberOfColumns())]
    assert row[:4] == ["1", "100", "-40", "-195"]
    assert float(row[4]) == 8.5 and float(row[5]) == 310.0 and float(row[6]) == pytest.approx(0.93)
    assert row[7] == "4A"
    assert vtk_table.GetValueByName(1, "Uncertainty").ToDouble() == pytest.approx(0.2)
    assert vtk_table.GetValueByName(1, "Lung-RADS").ToString() == ""


def test_nodules_become_one_segment_per_finding(detect_outdir, ct_node):
    nodules = load_detect_outputs(detect_outdir, ct_node, "chest CT").nodules
    segmentation = nodules.GetSegmentation()
    names = [segmentation.GetNthSegment(i).GetName() for i in range(segmentation.GetNumberOfSegments())]
    assert names == ["nodule 1", "nodule 2"]


def test_no_findings_gives_empty_markups_and_table(tmp_path, ct_node, ct_grid):
    write_label_map(np.zeros(ct_grid.array.shape, np.uint8), ct_grid, tmp_path / "nodules.nii.gz")
    (tmp_path / "findings.json").write_text(json.dumps({"coordinate_system": "LPS", "units": "mm", "findings": []}))

    outputs = load_detect_outputs(tmp_path, ct_node, "chest CT")
    assert outputs.markups.GetNumberOfControlPoints() == 0
    assert outputs.table.GetNumberOfRows() == 0


def test_a_malformed_findings_file_is_reported(tmp_path, ct_node):
    (tmp_path / "findings.json").write_text(json.dumps({"findings": [{"id": 1}]}))
    with pytest.raises(InputError, match="findings.json: not a valid findings.json"):
        load_detect_outputs(tmp_path, ct_node, "chest CT")
