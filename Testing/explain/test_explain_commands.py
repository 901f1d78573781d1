"""`segment --uncertainty N --gradcam SEGMENT` and `detect --uncertainty N --gradcam`: CONTRACT outputs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import SimpleITK as sitk
from MedSegAILib.cli.main import main
from MedSegAILib.explain.finding_gradcam import DEFAULT_FINDING_LAYER
from MedSegAILib.io import Volume


def read(path) -> Volume:
    return Volume.from_sitk(sitk.ReadImage(str(path)))


def test_segment_writes_uncertainty_and_gradcam_on_the_input_grid(
    phantom_file, phantom, random_model_dir, tmp_path
):
    out = tmp_path / "out"
    code = main(
        [
            "segment",
            str(phantom_file),
            "-o",
            str(out),
            "--model",
            str(random_model_dir),
            "--quiet",
            "--uncertainty",
            "3",
            "--gradcam",
            "lung nodule",
            "--gradcam",
            "left_lung",
        ]
    )
    assert code == 0
    for name in (
        "uncertainty_entropy.nii.gz",
        "uncertainty_mutual_information.nii.gz",
        "gradcam_lung_nodule.nii.gz",
        "gradcam_left_lung.nii.gz",
    ):
        image = sitk.ReadImage(str(out / name))
        assert image.GetPixelID() == sitk.sitkFloat32, name
        assert read(out / name).same_grid(phantom), name
    entropy = read(out / "uncertainty_entropy.nii.gz").array
    information = read(out / "uncertainty_mutual_information.nii.gz").array
    assert (
        entropy.min() >= 0.0
        and entropy.max() <= np.log(4) + 1e-4
        and information.max() <= entropy.max() + 1e-4
    )
    for name in ("gradcam_lung_nodule.nii.gz", "gradcam_left_lung.nii.gz"):
        values = read(out / name).array
        assert values.min() >= 0.0 and values.max() <= 1.0
    summary = json.loads((out / "uncertainty.json").read_text())
    assert summary["samples"] == 3 and summary["units"].startswith("nats")
    assert [segment["name"] for segment in summary["segments"]] == [
        "left lung",
        "right lung",
        "lung nodule",
        "airway",
    ]
    for segment in summary["segments"]:
        assert {"mean_entropy", "uncertain_volume_mm3", "dice_agreement", "needs_review"} <= set(segment)
    record = json.loads((out / "run.json").read_text())
    assert {"uncertainty", "gradcam"} <= set(record["timings"])
    assert record["options"]["gradcam"]["layer"] == "decoder.0"


def test_plain_segment_writes_no_explanations(phantom_file, random_model_dir, tmp_path):
    out = tmp_path / "out"
    assert (
        main(["segment", str(phantom_file), "-o", str(out), "--model", str(random_model_dir), "--quiet"]) == 0
    )
    assert not list(out.glob("uncertainty*")) and not list(out.glob("gradcam*"))
    assert "uncertainty" not in json.loads((out / "run.json").read_text())["timings"]


@pytest.mark.parametrize(
    "option, message",
    [
        (["--uncertainty", "1"], "at least 2"),
        (["--uncertainty", "-3"], "at least 2"),
        (["--gradcam", "lung nodule", "--gradcam-layer", "decoder.9"], "no such layer"),
    ],
)
def test_bad_options_exit_2_and_leave_no_output(
    phantom_file, random_model_dir, tmp_path, capsys, option, message
):
    out = tmp_path / "out"
    assert (
        main(
            ["segment", str(phantom_file), "-o", str(out), "--model", str(random_model_dir), "--quiet"]
            + option
        )
        == 2
    )
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_detect_with_uncertainty_and_gradcam(phantom_file, phantom, model_with_classifier, tmp_path):
    out = tmp_path / "out"
    code = main(
        [
            "detect",
            str(phantom_file),
            "-o",
            str(out),
            "--model",
            str(model_with_classifier),
            "--quiet",
            "--threshold",
            "0",
            "--uncertainty",
            "2",
            "--gradcam",
        ]
    )
    assert code == 0
    written = read(out / "gradcam_nodules.nii.gz")
    assert written.same_grid(phantom)
    assert written.array.dtype == np.float32 and 0.0 <= written.array.min() and written.array.max() <= 1.0
    findings = json.loads((out / "findings.json").read_text())["findings"]
    for finding in findings:
        assert {"mean_entropy", "dice_agreement", "needs_review", "samples"} <= set(finding["uncertainty"])
    record = json.loads((out / "run.json").read_text())
    assert {"uncertainty", "gradcam"} <= set(record["timings"])
    gradcam = record["options"]["gradcam"]
    assert (
        gradcam["layer"] == DEFAULT_FINDING_LAYER
        and gradcam["method"] == "layercam"
        and gradcam["findings"] == len(findings)
    )
    if len(findings) > gradcam["empty_maps"]:
        assert written.array.max() == pytest.approx(1.0)


def test_segment_with_detect_and_gradcam_also_writes_the_findings_map(
    phantom_file, phantom, model_with_classifier, tmp_path
):
    out = tmp_path / "out"
    assert (
        main(
            [
                "segment",
                str(phantom_file),
                "-o",
                str(out),
                "--model",
                str(model_with_classifier),
                "--quiet",
                "--detect",
                "--threshold",
                "0",
                "--gradcam",
                "lung nodule",
            ]
        )
        == 0
    )
    assert read(out / "gradcam_lung_nodule.nii.gz").same_grid(phantom)
    findings_map = read(out / "gradcam_nodules.nii.gz")
    assert (
        findings_map.same_grid(phantom)
        and 0.0 <= findings_map.array.min()
        and findings_map.array.max() <= 1.0
    )
    record = json.loads((out / "run.json").read_text())["options"]["gradcam_findings"]
    findings = json.loads((out / "findings.json").read_text())["findings"]
    assert record["layer"] == DEFAULT_FINDING_LAYER and record["findings"] == len(findings)


def test_detect_gradcam_with_an_unknown_layer_exits_2_and_leaves_no_output(
    phantom_file, model_with_classifier, tmp_path, capsys
):
    out = tmp_path / "out"
    assert (
        main(
            [
                "detect",
                str(phantom_file),
                "-o",
                str(out),
                "--model",
                str(model_with_classifier),
                "--quiet",
                "--gradcam",
                "--gradcam-layer",
                "decoder.0",
            ]
        )
        == 2
    )
    assert "no such layer" in capsys.readouterr().err
    assert not out.exists()
