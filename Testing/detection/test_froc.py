"""FROC / CPM on small cases computed by hand, and the `medsegai evaluate detect` command."""

from __future__ import annotations

import json

import numpy as np
import pytest
from MedSegAILib.cli.main import main
from MedSegAILib.detection.froc import PredictedFinding as P
from MedSegAILib.detection.froc import ReferenceNodule as R
from MedSegAILib.detection.froc import compute_froc, is_hit
from MedSegAILib.io import Volume, write_label_map

# Scan A: n1 (radius 10 mm) and n2 (diameter 4 mm, so the 5 mm minimum radius applies).
# Scan B: n3 (radius 4 mm -> 5 mm).
REFERENCES = {
    "A": [R((0, 0, 0), 20.0), R((50, 0, 0), 4.0)],
    "B": [R((0, 0, 0), 8.0)],
}
PREDICTIONS = {
    "A": [
        P((0, 0, 9), 0.9),  # hits n1 (9 <= 10)
        P((50, 0, 4.9), 0.8),  # hits n2 (4.9 <= 5)
        P((0, 0, 6), 0.7),  # hits n1 again: counted neither as hit nor as false positive
        P((100, 0, 0), 0.6),  # false positive
    ],
    "B": [
        P((0, 6, 0), 0.95),  # 6 > 5: false positive
        P((0, 0, 4), 0.5),  # hits n3
    ],
}


def test_hand_computed_froc_curve_sensitivities_and_cpm():
    result = compute_froc(PREDICTIONS, REFERENCES)
    assert result.thresholds == [0.95, 0.9, 0.8, 0.6, 0.5]
    assert result.sensitivity == pytest.approx([0, 1 / 3, 2 / 3, 2 / 3, 1])
    assert result.fp_per_scan == pytest.approx([0.5, 0.5, 0.5, 1.0, 1.0])
    expected = {0.125: 0, 0.25: 0, 0.5: 2 / 3, 1: 1, 2: 1, 4: 1, 8: 1}
    assert result.sensitivity_at == pytest.approx(expected)
    assert result.cpm == pytest.approx((2 / 3 + 4) / 7)
    assert (result.scans, result.references, result.predictions) == (2, 3, 6)
    assert (result.detected, result.false_positives) == (3, 2)


def test_hit_radius_is_the_nodule_radius_but_at_least_5_mm():
    assert is_hit(P((0, 0, 5.0), 1), R((0, 0, 0), 3.0))
    assert not is_hit(P((0, 0, 5.1), 1), R((0, 0, 0), 3.0))
    assert is_hit(P((0, 7.9, 0), 1), R((0, 0, 0), 16.0))
    assert not is_hit(P((0, 8.1, 0), 1), R((0, 0, 0), 16.0))


def test_one_finding_between_two_close_nodules_detects_both():
    result = compute_froc({"A": [P((0, 0, 2), 0.7)]}, {"A": [R((0, 0, 0), 6.0), R((0, 0, 4), 6.0)]})
    assert result.sensitivity == [1.0] and result.fp_per_scan == [0.0]
    assert result.cpm == 1.0


def test_scans_without_findings_or_nodules_count_in_the_false_positive_rate():
    references = {"A": [R((0, 0, 0), 10.0)], "B": [], "C": [], "D": []}
    result = compute_froc({"A": [P((0, 0, 0), 0.9)], "B": [P((9, 9, 9), 0.95)]}, references)
    assert result.fp_per_scan == [0.25, 0.25]
    assert result.sensitivity_at[0.125] == 0.0 and result.sensitivity_at[0.25] == 1.0


def test_missed_nodules_and_bad_inputs():
    result = compute_froc({}, {"A": [R((0, 0, 0), 10.0)]})
    assert result.thresholds == [] and result.cpm == 0.0
    with pytest.raises(ValueError, match="no nodules"):
        compute_froc({}, {"A": []})
    with pytest.raises(ValueError, match="without a reference"):
        compute_froc({"X": []}, {"A": [R((0, 0, 0), 10.0)]})


def _write_findings(folder, findings):
    folder.mkdir(parents=True)
    data = {
        "coordinate_system": "LPS",
        "units": "mm",
        "findings": [
            {"id": n + 1, "center": list(f.center), "score": f.score} for n, f in enumerate(findings)
        ],
    }
    (folder / "findings.json").write_text(json.dumps(data))


def test_evaluate_detect_command_with_points_reference(tmp_path, capsys):
    for scan, findings in PREDICTIONS.items():
        _write_findings(tmp_path / "pred" / scan, findings)
    reference = {
        "scans": {
            s: [{"center": list(n.center), "diameter_mm": n.diameter_mm} for n in ns]
            for s, ns in REFERENCES.items()
        }
    }
    (tmp_path / "ref.json").write_text(json.dumps(reference))
    code = main(
        [
            "evaluate",
            "detect",
            "--predictions",
            str(tmp_path / "pred"),
            "--reference",
            str(tmp_path / "ref.json"),
            "-o",
            str(tmp_path / "out"),
        ]
    )
    assert code == 0
    froc = json.loads((tmp_path / "out" / "froc.json").read_text())
    assert froc["cpm"] == pytest.approx((2 / 3 + 4) / 7, abs=1e-4)
    assert froc["sensitivity_at_fp_per_scan"]["1/2"] == pytest.approx(0.6667, abs=1e-4)
    assert len(froc["curve"]) == 5
    assert (tmp_path / "out" / "froc.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "CPM 0.667" in capsys.readouterr().out


def test_evaluate_detect_command_with_label_map_reference(tmp_path):
    grid = Volume(np.zeros((20, 40, 40), np.int16), (1.0, 1.0, 2.0), (-20.0, -20.0, 0.0))
    labels = np.zeros(grid.array.shape, np.uint8)
    labels[9:12, 10:16, 10:16] = 1  # a 6 mm nodule centred at voxel (12.5, 12.5, 10)
    labels[9:12, 30:34, 30:34] = 1  # a second one, same value, separate component
    write_label_map(labels, grid, tmp_path / "refs" / "scan1.nii.gz")
    center = grid.ijk_to_lps([12.5, 12.5, 10]).tolist()
    _write_findings(tmp_path / "pred" / "scan1", [P(tuple(center), 0.8), P((0.0, 0.0, 100.0), 0.9)])
    code = main(
        [
            "evaluate",
            "detect",
            "--predictions",
            str(tmp_path / "pred" / "scan1" / "findings.json"),
            "--reference",
            str(tmp_path / "refs"),
            "-o",
            str(tmp_path / "out"),
        ]
    )
    assert code == 0
    froc = json.loads((tmp_path / "out" / "froc.json").read_text())
    assert froc["references"] == 2 and froc["per_scan"]["scan1"]["detected"] == 1
    assert froc["curve"][-1] == {"threshold": 0.8, "fp_per_scan": 1.0, "sensitivity": 0.5}


def test_evaluate_detect_refuses_mismatched_scans_with_exit_code_2(tmp_path, capsys):
    _write_findings(tmp_path / "pred" / "other", [P((0, 0, 0), 0.5)])
    (tmp_path / "ref.json").write_text(
        json.dumps({"scans": {"A": [{"center": [0, 0, 0], "diameter_mm": 5}]}})
    )
    code = main(
        [
            "evaluate",
            "detect",
            "--predictions",
            str(tmp_path / "pred"),
            "--reference",
            str(tmp_path / "ref.json"),
            "-o",
            str(tmp_path / "out"),
        ]
    )
    assert code == 2
    assert "other" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
