"""CONTRACT findings (LPS) -> markups points and a table node (RAS = LPS with x, y negated)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from MedSegAILib.detection.detector import Finding as DetectorFinding
from MedSegAILib.detection.measure import NoduleMeasurement, lung_rads_category
from MedSegAILib.errors import InputError
from MedSegAILib.io import write_label_map
from MedSegAILib.slicer.findings_nodes import TABLE_COLUMNS
from MedSegAILib.slicer.outputs import load_detect_outputs


def engine_finding(
    finding_id: int, center, long_axis: float, short_axis: float, volume: float, score: float
) -> dict:
    """A finding as `medsegai detect` writes it (its own to_json), so the adapter reads the engine's keys."""
    mean = round((long_axis + short_axis) / 2, 1)
    measurement = NoduleMeasurement(
        center=tuple(center),
        bbox=(tuple(c - 4 for c in center), tuple(c + 4 for c in center)),
        volume_mm3=volume,
        long_axis_mm=long_axis,
        short_axis_mm=short_axis,
        mean_diameter_mm=mean,
        lung_rads=lung_rads_category(mean),
        voxels=10,
    )
    return DetectorFinding(finding_id, score, measurement, None, mask_slices=(), mask=np.zeros(0)).to_json()


FINDINGS = {
    "coordinate_system": "LPS",
    "units": "mm",
    "findings": [
        engine_finding(1, (-100.0, 40.0, -195.0), 8.5, 7.9, 310.0, 0.93),
        engine_finding(2, (-115.5, 33.0, -190.0), 4.0, 3.0, 30.0, 0.41),
    ],
}
# With --uncertainty N each finding also has the summary `uncertainty.summary.region_summary` writes.
FINDINGS["findings"][1]["uncertainty"] = {
    "volume_mm3": 30.0,
    "mean_entropy": 0.2,
    "mean_mutual_information": 0.05,
    "uncertain_volume_mm3": 12.0,
    "uncertain_fraction": 0.4,
    "dice_agreement": 0.8,
    "dice_agreement_min": 0.7,
    "needs_review": True,
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
    assert [float(v) for v in row[4:8]] == [8.5, 8.2, 310.0, pytest.approx(0.93)]
    assert row[8] == "4A" and vtk_table.GetValueByName(1, "Lung-RADS").ToString() == "2"
    assert np.isnan(vtk_table.GetValueByName(0, "Mean entropy").ToDouble()) and row[10] == ""
    assert vtk_table.GetValueByName(1, "Mean entropy").ToDouble() == pytest.approx(0.2)
    assert vtk_table.GetValueByName(1, "Needs review").ToString() == "yes"


def test_nodules_become_one_segment_per_finding(detect_outdir, ct_node):
    nodules = load_detect_outputs(detect_outdir, ct_node, "chest CT").nodules
    segmentation = nodules.GetSegmentation()
    names = [segmentation.GetNthSegment(i).GetName() for i in range(segmentation.GetNumberOfSegments())]
    assert names == ["nodule 1", "nodule 2"]


def test_no_findings_gives_empty_markups_and_table(tmp_path, ct_node, ct_grid):
    write_label_map(np.zeros(ct_grid.array.shape, np.uint8), ct_grid, tmp_path / "nodules.nii.gz")
    (tmp_path / "findings.json").write_text(
        json.dumps({"coordinate_system": "LPS", "units": "mm", "findings": []})
    )

    outputs = load_detect_outputs(tmp_path, ct_node, "chest CT")
    assert outputs.markups.GetNumberOfControlPoints() == 0
    assert outputs.table.GetNumberOfRows() == 0


def test_a_malformed_findings_file_is_reported(tmp_path, ct_node):
    (tmp_path / "findings.json").write_text(json.dumps({"findings": [{"id": 1}]}))
    with pytest.raises(InputError, match="findings.json: not a valid findings.json"):
        load_detect_outputs(tmp_path, ct_node, "chest CT")


def test_findings_in_another_coordinate_system_are_refused(tmp_path, ct_node):
    (tmp_path / "findings.json").write_text(json.dumps({**FINDINGS, "coordinate_system": "RAS"}))
    with pytest.raises(InputError, match="coordinate_system is 'RAS', not 'LPS'"):
        load_detect_outputs(tmp_path, ct_node, "chest CT")
