"""`medsegai segment` end to end: CONTRACT files on the input grid; bad input exits 2 first."""

from __future__ import annotations

import json

import numpy as np
import pytest
import SimpleITK as sitk
from chest_phantom import chest_phantom, rotation
from MedSegAILib.cli.main import main
from MedSegAILib.io import Volume, read_volume


@pytest.fixture
def phantom_file(tmp_path):
    """An oblique, anisotropic phantom CT written as NIfTI."""
    volume = chest_phantom(spacing=(3.0, 3.5, 5.0), direction=rotation(10.0, 5.0))
    path = tmp_path / "phantom.nii.gz"
    sitk.WriteImage(volume.to_sitk(), str(path))
    return path


def test_segment_writes_the_contract_files_on_the_input_grid(phantom_file, test_model_dir, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["segment", str(phantom_file), "-o", str(out), "--model", str(test_model_dir)]) == 0

    assert sorted(p.name for p in out.iterdir()) == [
        "findings.json",  # the default chest model's lesions: the `lung nodule` segment's findings
        "labels.json",
        "nodules.nii.gz",
        "run.json",
        "segmentation.nii.gz",
        "volumes.json",
    ]
    source = read_volume(phantom_file)
    labels = Volume.from_sitk(sitk.ReadImage(str(out / "segmentation.nii.gz")))
    assert labels.same_grid(source)
    assert np.issubdtype(labels.array.dtype, np.integer)

    names = [entry["name"] for entry in json.loads((out / "labels.json").read_text())["labels"]]
    assert names == ["left lung", "right lung", "lung nodule", "airway"]
    entry = json.loads((out / "labels.json").read_text())["labels"][0]
    assert (
        entry["value"] == 1
        and len(entry["color"]) == 3
        and entry["terminology"]["type"]["code"] == "44029006"
    )

    run = json.loads((out / "run.json").read_text())
    assert run["model"]["name"] == "test_random" and len(run["model"]["weights_sha256"]) == 64
    assert run["device"] == "cpu"
    assert {"load", "preprocess", "inference", "postprocess", "total"} <= set(run["timings"])
    assert run["peak_rss_mb"] > 0 and "torch" in run["versions"]

    progress_lines = capsys.readouterr().err.splitlines()
    assert any(line.startswith("[") and "inference: window" in line for line in progress_lines)


def test_quiet_prints_no_progress(phantom_file, test_model_dir, tmp_path, capsys):
    assert (
        main(
            [
                "segment",
                str(phantom_file),
                "-o",
                str(tmp_path / "out"),
                "--model",
                str(test_model_dir),
                "--quiet",
                "--fast",
            ]
        )
        == 0
    )
    assert capsys.readouterr().err == ""


def test_bad_input_exits_2_before_any_model_is_looked_at(tmp_path, capsys):
    broken = tmp_path / "broken.nii.gz"
    broken.write_bytes(b"not an image")
    out = tmp_path / "out"
    assert main(["segment", str(broken), "-o", str(out), "--model", "no_such_model"]) == 2
    err = capsys.readouterr().err
    assert str(broken) in err and "no such model" not in err
    assert not out.exists()


def test_unknown_model_exits_2_and_leaves_no_output(phantom_file, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["segment", str(phantom_file), "-o", str(out), "--model", "no_such_model"]) == 2
    assert "no such model" in capsys.readouterr().err
    assert not out.exists()


def test_unavailable_device_exits_2(phantom_file, test_model_dir, tmp_path, capsys):
    assert (
        main(
            [
                "segment",
                str(phantom_file),
                "-o",
                str(tmp_path / "out"),
                "--model",
                str(test_model_dir),
                "--device",
                "cuda:7",
            ]
        )
        == 2
    )
    assert "--device cuda:7" in capsys.readouterr().err


def test_stl_and_detect_come_from_the_same_run(phantom_file, test_model_dir, tmp_path):
    out = tmp_path / "out"
    assert (
        main(
            [
                "segment",
                str(phantom_file),
                "-o",
                str(out),
                "--model",
                str(test_model_dir),
                "--stl",
                "--detect",
                "--quiet",
            ]
        )
        == 0
    )

    source = read_volume(phantom_file)
    labels = Volume.from_sitk(sitk.ReadImage(str(out / "segmentation.nii.gz")))
    report = json.loads((out / "meshes" / "meshes.json").read_text())
    assert report["coordinate_system"] == "LPS" and report["units"] == "mm"
    written = {mesh["label"] for mesh in report["meshes"] if mesh["file"]}
    assert written == set(np.unique(labels.array).tolist()) - {0}
    for mesh in report["meshes"]:
        if mesh["file"]:
            assert (out / "meshes" / mesh["file"]).is_file() and mesh["closed"] and mesh["manifold"]

    findings = json.loads((out / "findings.json").read_text())
    assert findings["coordinate_system"] == "LPS" and isinstance(findings["findings"], list)
    assert Volume.from_sitk(sitk.ReadImage(str(out / "nodules.nii.gz"))).same_grid(source)
    run = json.loads((out / "run.json").read_text())
    assert {"mesh", "detect"} <= set(run["timings"])


def test_gradcam_of_an_unknown_segment_exits_2(phantom_file, test_model_dir, tmp_path, capsys):
    assert (
        main(
            [
                "segment",
                str(phantom_file),
                "-o",
                str(tmp_path / "out"),
                "--model",
                str(test_model_dir),
                "--gradcam",
                "liver",
            ]
        )
        == 2
    )
    assert "has no segment 'liver'" in capsys.readouterr().err
