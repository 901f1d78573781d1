"""`medsegai info`: the grid, geometry, HU range and series of an input, as text or JSON."""

from __future__ import annotations

import json

import pydicom
from bad_inputs import CIP_SERIES, two_series
from cli_process import run_cli
from MedSegAILib.cli.main import main


def test_info_json_on_a_dicom_series(shared_data):
    result = run_cli("info", str(shared_data(CIP_SERIES)), "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    first = pydicom.dcmread(shared_data(CIP_SERIES) / "IMG0001.dcm", stop_before_pixels=True)
    assert summary["format"] == "dicom"
    assert summary["size"] == [64, 64, 79]
    assert summary["spacing_mm"][:2] == [4.171872, 4.171872]
    assert abs(summary["spacing_mm"][2] - 3.98734) < 1e-4
    assert summary["origin_lps_mm"] == [float(v) for v in first.ImagePositionPatient]
    assert summary["direction"] == [[1, 0, 0], [0, 1, 0], [0, 0, 1]]
    assert summary["hu_range"] == [-1007.0, 1095.0]
    assert summary["series_uid"] == first.SeriesInstanceUID
    assert summary["dicom_files"] == 79


def test_info_series_option_picks_one_of_two_series(shared_data, tmp_path):
    folder = two_series(tmp_path, shared_data)
    other_uid = str(pydicom.dcmread(next(folder.glob("other_*")), stop_before_pixels=True).SeriesInstanceUID)
    result = run_cli("info", str(folder), "--series", other_uid)
    assert result.returncode == 0, result.stderr
    assert f"series UID:      {other_uid}\n" in result.stdout
    assert "size (i j k):    64 x 64 x 79\n" in result.stdout


def test_info_text_on_a_volume_file(shared_data, capsys):
    assert main(["info", str(shared_data("cip_lung_ct/ct-64.nrrd"))]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1:] == [
        "format:          nrrd",
        "size (i j k):    64 x 64 x 79",
        "spacing (mm):    4.17187, 4.17187, 3.98734",
        "origin (LPS mm): -128.414, -264.414, -360.256",
        "direction:       [1, 0, 0]  [0, 1, 0]  [0, 0, 1]",
        "HU range:        -1007 to 1095",
        "series UID:      -",
    ]
