"""`medsegai detect`: the files CONTRACT.md promises, and clean refusals."""

from __future__ import annotations

import json

import numpy as np
import pytest
import SimpleITK as sitk
from MedSegAILib.cli.main import main
from MedSegAILib.io import Volume, read_volume
from MedSegAILib.jobs import runner

from .fake_model import fake_model, synthetic_chest


@pytest.fixture(scope="module")
def chest_file(tmp_path_factory):
    volume, nodule_center, _ = synthetic_chest()
    path = tmp_path_factory.mktemp("ct") / "chest.nii.gz"
    sitk.WriteImage(volume.to_sitk(), str(path))
    return path, nodule_center


@pytest.fixture
def stand_in_model(monkeypatch):
    model = fake_model()
    monkeypatch.setattr(runner, "resolve_model", lambda name: model.card)
    monkeypatch.setattr(runner, "load_model", lambda card, device: model)


def test_detect_writes_findings_nodule_map_and_run_record(chest_file, stand_in_model, tmp_path):
    path, nodule_center = chest_file
    out = tmp_path / "out"
    assert main(["detect", str(path), "-o", str(out), "--quiet", "--device", "cpu", "--threads", "1"]) == 0
    findings = json.loads((out / "findings.json").read_text())
    assert (
        findings["coordinate_system"] == "LPS" and findings["units"] == "mm" and findings["threshold"] == 0.5
    )
    assert [f["id"] for f in findings["findings"]] == [1]
    top = findings["findings"][0]
    assert np.linalg.norm(np.subtract(top["center"], nodule_center)) <= 1.0
    assert top["diameter_mm"] == pytest.approx(10.0, abs=1.5) and top["lung_rads"] == "4A"
    ct = read_volume(path)
    nodules = Volume.from_sitk(sitk.ReadImage(str(out / "nodules.nii.gz")))
    assert nodules.same_grid(ct)
    i, j, k = np.rint(ct.lps_to_ijk(nodule_center)).astype(int)
    assert nodules.array[k, j, i] == 1 and set(np.unique(nodules.array)) == {0, 1}
    run = json.loads((out / "run.json").read_text())
    assert run["command"] == "detect"
    assert {"load", "preprocess", "inference", "postprocess", "detect", "total"} <= set(run["timings"])
    assert not list(out.glob(".medsegai-staging-*"))


def test_threshold_above_every_score_gives_an_empty_findings_file(chest_file, stand_in_model, tmp_path):
    path, _ = chest_file
    assert main(["detect", str(path), "-o", str(tmp_path), "--quiet", "--threshold", "1"]) == 0
    assert json.loads((tmp_path / "findings.json").read_text())["findings"] == []
    assert not sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "nodules.nii.gz"))).any()


@pytest.mark.parametrize(
    "extra, message", [(["--threshold", "1.5"], "--threshold"), (["--threshold", "-0.1"], "--threshold")]
)
def test_a_threshold_outside_0_to_1_is_refused_with_exit_2_and_no_output(
    chest_file, stand_in_model, tmp_path, capsys, extra, message
):
    path, _ = chest_file
    assert main(["detect", str(path), "-o", str(tmp_path / "out"), "--quiet"] + extra) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_unreadable_input_exits_2_and_leaves_nothing(tmp_path, capsys):
    bad = tmp_path / "broken.nii.gz"
    bad.write_bytes(b"not an image")
    assert main(["detect", str(bad), "-o", str(tmp_path / "out"), "--quiet"]) == 2
    assert "broken.nii.gz" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
