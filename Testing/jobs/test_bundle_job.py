"""The `detect` job with an imported MONAI RetinaNet bundle (random weights, plumbing only)."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
from bundle_factory import make_detection_bundle
from MedSegAILib.errors import InputError
from MedSegAILib.io.volume import Volume
from MedSegAILib.jobs import JobRequest, run_job
from MedSegAILib.models.install import import_model


@pytest.fixture
def bundle_model(tmp_path, monkeypatch) -> str:
    """A detection bundle installed as ``nodule_bundle`` in a private model folder."""
    monkeypatch.setenv("MEDSEGAI_MODELS", str(tmp_path / "models"))
    bundle = make_detection_bundle(tmp_path / "lung_nodule_ct_detection", tmp_path / "trap.txt")
    return import_model(bundle, name="nodule_bundle").name


@pytest.fixture
def bright_ct(tmp_path):
    ct = Volume(
        np.random.default_rng(0).normal(-850, 30, (24, 40, 40)).astype(np.float32),
        spacing=(1.5, 1.5, 2.0),
        origin=(-30.0, -30.0, -24.0),
    )
    ct.array[6:12, 14:22, 12:20] = 40.0
    path = tmp_path / "ct.nii.gz"
    sitk.WriteImage(ct.to_sitk(), str(path))
    return path


def test_a_bundle_detect_job_writes_findings_then_the_nodule_map_then_run_json(
    bundle_model, bright_ct, tmp_path
):
    request = JobRequest(
        command="detect",
        input=str(bright_ct),
        output=str(tmp_path / "out"),
        model=bundle_model,
        device="cpu",
        threshold=0.0,
    )
    result = run_job(request)

    assert result.files == ("findings.json", "nodules.nii.gz", "run.json")
    assert result.record["options"] == {
        "threshold": 0.0,
        "score": "RetinaNet bundle nodule_bundle",
        "findings": result.findings,
    }
    assert {"read", "load", "preprocess", "inference", "postprocess", "write", "total"} <= set(
        result.record["timings"]
    )


@pytest.mark.parametrize("options", [{"uncertainty": 2}, {"findings_gradcam": True}])
def test_a_bundle_cannot_give_uncertainty_or_gradcam_and_leaves_no_output_folder(
    bundle_model, bright_ct, tmp_path, options
):
    request = JobRequest(
        command="detect",
        input=str(bright_ct),
        output=str(tmp_path / "out"),
        model=bundle_model,
        device="cpu",
        **options,
    )
    with pytest.raises(InputError, match="RetinaNet detection bundle"):
        run_job(request)
    assert not (tmp_path / "out").exists()
