"""What `run_job` promises: a specification of the job runner behind `segment` and `detect`.

Random-weight models: the numbers are meaningless, the plumbing is what is tested.
"""

from __future__ import annotations

import json

import pytest
from MedSegAILib.errors import Cancelled, InputError
from MedSegAILib.jobs import JobRequest, run_job, runner
from MedSegAILib.jobs.bundle_detect import run_bundle_detect
from MedSegAILib.jobs.context import progress_ranges
from MedSegAILib.jobs.detect import run_detect
from MedSegAILib.jobs.segment import run_segment
from MedSegAILib.models.bundle_detection import BundleDetector
from MedSegAILib.models.loaded import LoadedModel
from MedSegAILib.progress import CancelToken
from torch import nn

REQUIRED_STAGES = {"read", "load", "preprocess", "inference", "postprocess", "write", "total"}


def segment_request(ct_file, model_dir, out, **options) -> JobRequest:
    options = {"device": "cpu", "threads": 1, **options}
    return JobRequest(command="segment", input=str(ct_file), output=str(out), model=str(model_dir), **options)


def test_a_segment_job_writes_the_segmentation_then_labels_then_run_json(ct_file, model_dir, tmp_path):
    result = run_job(segment_request(ct_file, model_dir, tmp_path / "out", detect=False))

    assert result.files == ("segmentation.nii.gz", "labels.json", "volumes.json", "run.json")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(result.files)
    assert result.findings is None


def test_with_lesions_the_findings_follow_the_segmentation(ct_file, model_dir, tmp_path):
    result = run_job(segment_request(ct_file, model_dir, tmp_path / "out"))

    assert result.files == (
        "segmentation.nii.gz",
        "labels.json",
        "volumes.json",
        "findings.json",
        "nodules.nii.gz",
        "run.json",
    )
    assert result.findings == result.record["options"]["findings"]
    assert json.loads((tmp_path / "out" / "run.json").read_text()) == result.record


def test_every_option_adds_its_outputs_in_a_fixed_order_with_run_json_last(ct_file, model_dir, tmp_path):
    request = segment_request(
        ct_file,
        model_dir,
        tmp_path / "out",
        uncertainty=2,
        segment_gradcams=("lung nodule",),
        findings_gradcam=True,
        detect=True,
        stl=True,
    )
    result = run_job(request)

    assert result.files == (
        "uncertainty_entropy.nii.gz",
        "uncertainty_mutual_information.nii.gz",
        "uncertainty.json",
        "gradcam_lung_nodule.nii.gz",
        "gradcam_nodules.nii.gz",
        "segmentation.nii.gz",
        "labels.json",
        "volumes.json",
        "findings.json",
        "nodules.nii.gz",
        "meshes",
        "run.json",
    )
    assert result.findings == result.record["options"]["findings"]


def test_run_json_times_every_stage_that_ran_and_the_total(ct_file, model_dir, tmp_path):
    result = run_job(
        segment_request(
            ct_file,
            model_dir,
            tmp_path / "out",
            uncertainty=2,
            segment_gradcams=("left lung",),
            detect=True,
            stl=True,
        )
    )
    timings = result.record["timings"]

    assert REQUIRED_STAGES | {"detect", "uncertainty", "gradcam", "mesh"} <= set(timings)
    assert all(seconds >= 0 for seconds in timings.values())
    assert timings["total"] >= max(seconds for stage, seconds in timings.items() if stage != "total")
    assert result.record["command"] == "segment" and result.record["device"] == "cpu"
    assert result.record["options"]["uncertainty_samples"] == 2 and "gradcam" in result.record["options"]


def test_progress_rises_to_1_and_reaches_it_once_the_outputs_are_in_place(ct_file, model_dir, tmp_path):
    out = tmp_path / "out"
    seen = []

    def progress(fraction: float, message: str) -> None:
        seen.append((fraction, message, (out / "run.json").is_file()))

    run_job(
        segment_request(ct_file, model_dir, out, uncertainty=2, segment_gradcams=("lung nodule",), stl=True),
        progress,
    )

    fractions = [fraction for fraction, _, _ in seen]
    assert fractions[0] == 0.0 and seen[0][1].startswith("load: model test_random")
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert seen[-1][1:] == ("done", True)
    assert not any(in_place for _, _, in_place in seen[:-1])


def test_the_stages_share_the_progress_bar_the_network_first():
    assert progress_ranges([]) == {"network": (0.0, 1.0)}
    ranges = progress_ranges(["uncertainty", "gradcam"])
    assert ranges["network"] == (0.0, 0.8)
    assert ranges["uncertainty"] == pytest.approx((0.8, 0.95)) and ranges["gradcam"] == pytest.approx(
        (0.95, 1.0)
    )
    spans = list(progress_ranges(["uncertainty", "gradcam", "mesh"]).values())
    assert all(a[1] == pytest.approx(b[0]) for a, b in zip(spans, spans[1:])) and spans[-1][1] == 1.0


def test_a_cancelled_job_leaves_no_output_folder(ct_file, model_dir, tmp_path):
    token = CancelToken()

    def cancel_at_inference(fraction: float, message: str) -> None:
        if message.startswith("inference"):
            token.cancel()

    with pytest.raises(Cancelled):
        run_job(segment_request(ct_file, model_dir, tmp_path / "out"), cancel_at_inference, token)
    assert not (tmp_path / "out").exists()


def test_a_cancelled_job_leaves_an_existing_folder_as_it_was(ct_file, model_dir, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    token = CancelToken()
    token.cancel()

    with pytest.raises(Cancelled):
        run_job(segment_request(ct_file, model_dir, out), cancel=token)
    assert [p.name for p in out.iterdir()] == ["notes.txt"]


@pytest.mark.parametrize(
    "options, message",
    [
        ({"uncertainty": 1}, "--uncertainty 1"),
        ({"threshold": 1.5}, "--threshold 1.5"),
        ({"threads": 0}, "--threads 0"),
        (
            {"findings_gradcam": True, "findings_gradcam_layer": "no.such.layer"},
            "--gradcam-layer no.such.layer",
        ),
        ({"segment_gradcams": ("spleen",)}, "spleen"),
    ],
)
def test_bad_options_are_refused_before_any_model_loads(
    ct_file, model_dir, tmp_path, monkeypatch, options, message
):
    def no_model(card, device):
        raise AssertionError("the model must not be loaded")

    monkeypatch.setattr(runner, "load_model", no_model)
    with pytest.raises(InputError, match=message):
        run_job(segment_request(ct_file, model_dir, tmp_path / "out", **options))
    assert not (tmp_path / "out").exists()


def test_a_detect_job_writes_findings_then_the_nodule_map_then_run_json(chest_file, density_model, tmp_path):
    result = run_job(
        JobRequest(
            command="detect", input=str(chest_file), output=str(tmp_path / "out"), device="cpu", threads=1
        )
    )

    assert result.files == ("findings.json", "nodules.nii.gz", "run.json")
    assert result.findings == 1 == result.record["options"]["findings"]
    assert result.record["command"] == "detect"
    assert REQUIRED_STAGES | {"detect"} <= set(result.record["timings"])


def test_the_job_follows_the_command_and_the_kind_of_model(density_model):
    detector = LoadedModel(
        card=density_model.card,
        network=BundleDetector(nn.Identity(), density_model.card),
        device=density_model.device,
    )
    segment = JobRequest(command="segment", input="ct.nii.gz", output="out")
    detect = JobRequest(command="detect", input="ct.nii.gz", output="out")

    assert runner.job_for(segment, density_model) is run_segment
    assert runner.job_for(detect, density_model) is run_detect
    assert runner.job_for(detect, detector) is run_bundle_detect
