"""`segment` gives the lesions: with a model that segments the lungs and has a `lung nodule`
segment, the findings of the same network pass are that segment, taken out of the lungs, with
findings.json and nodules.nii.gz beside it, the lungs' volumes with and without them, and closed
surfaces of the lesions and of each lung with its lesions.

The stand-in detection model on a synthetic chest (one 10 mm nodule in the right lung) checks the
plumbing; the last test runs the shipped models on the real chest CT and its mass.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import SimpleITK as sitk
from MedSegAILib.errors import InputError
from MedSegAILib.jobs import JobRequest, run_job
from MedSegAILib.jobs.lesions import finds_lesions
from MedSegAILib.models.registry import load_model, resolve_model


def _read(path) -> np.ndarray:
    return sitk.GetArrayFromImage(sitk.ReadImage(str(path)))


@pytest.fixture
def lesion_output(chest_file, density_model, tmp_path):
    out = tmp_path / "out"
    run_job(JobRequest(command="segment", input=str(chest_file), output=str(out), stl=True))
    return out


def test_the_lung_nodule_segment_is_exactly_the_findings(lesion_output):
    labels = _read(lesion_output / "segmentation.nii.gz")
    findings = _read(lesion_output / "nodules.nii.gz")
    document = json.loads((lesion_output / "findings.json").read_text())
    assert len(document["findings"]) == 1
    assert findings.any()
    assert np.array_equal(labels == 3, findings > 0)


def test_the_lungs_give_up_the_lesion_and_report_their_volume_with_it(lesion_output):
    volumes = json.loads((lesion_output / "volumes.json").read_text())
    by_name = {entry["name"]: entry for entry in volumes["segments"]}
    (lesion,) = volumes["lesions"]
    assert lesion["finding"] == 1 and lesion["lung"] == "right lung"
    right = by_name["right lung"]
    assert right["volume_with_lesions_ml"] == pytest.approx(
        right["volume_ml"] + lesion["volume_ml"], abs=0.02
    )
    assert by_name["left lung"]["volume_with_lesions_ml"] == by_name["left lung"]["volume_ml"]
    assert by_name["lung nodule"]["volume_ml"] == pytest.approx(lesion["volume_ml"], abs=0.01)


def test_the_lesion_and_each_lung_with_its_lesions_are_closed_surfaces(lesion_output):
    report = json.loads((lesion_output / "meshes" / "meshes.json").read_text())
    meshes = {mesh["name"]: mesh for mesh in report["meshes"]}
    for name in ("lung nodule", "right lung with lesions", "left lung with lesions"):
        assert meshes[name]["file"] and meshes[name]["closed"], name
    assert meshes["lung nodule"]["components"] == 1
    assert report["lesions"][0]["finding"] == 1
    assert meshes["right lung with lesions"]["volume_mm3"] > meshes["right lung"]["volume_mm3"]


def test_no_detect_leaves_the_network_segments_alone(chest_file, density_model, tmp_path):
    out = tmp_path / "out"
    run_job(JobRequest(command="segment", input=str(chest_file), output=str(out), detect=False))
    assert not (out / "findings.json").exists() and not (out / "nodules.nii.gz").exists()
    assert "lesions" not in json.loads((out / "volumes.json").read_text())


def test_lesions_are_the_default_only_for_models_with_lungs_and_a_lung_nodule_segment(density_model):
    card = density_model.card
    no_lesion_segment = dataclasses.replace(card, labels=card.labels[:2])
    no_lungs = dataclasses.replace(card, labels=card.labels[2:])
    assert finds_lesions(None, card)
    assert not finds_lesions(None, no_lesion_segment) and finds_lesions(True, no_lesion_segment)
    assert not finds_lesions(None, no_lungs) and not finds_lesions(False, card)
    with pytest.raises(InputError, match="segments no lungs"):
        finds_lesions(True, no_lungs)


@pytest.mark.shared_data
@pytest.mark.slow
def test_the_real_mass_is_the_lung_nodule_segment_and_its_closed_surface(shared_data, tmp_path):
    try:
        load_model(resolve_model(None), "cpu")
    except InputError:
        pytest.skip("needs the shipped chest_ct model")
    out = tmp_path / "out"
    run_job(
        JobRequest(command="segment", input=str(shared_data("chest_ct_dicom")), output=str(out), stl=True)
    )
    findings = json.loads((out / "findings.json").read_text())["findings"]
    assert 1 <= len(findings) <= 3
    mass = findings[0]
    assert mass["long_axis_mm"] >= 25.0, "finding 1 is not the 36 mm mass"
    labels = _read(out / "segmentation.nii.gz")
    ids = _read(out / "nodules.nii.gz")
    assert np.array_equal(labels == 3, ids > 0)
    assert np.count_nonzero(ids == 1) * 0.977 * 0.977 * 2.0 > 5000.0, "the mass is not in the segment"
    meshes = {m["name"]: m for m in json.loads((out / "meshes" / "meshes.json").read_text())["meshes"]}
    assert meshes["lung nodule"]["closed"] and (out / "meshes" / "lung_nodule.stl").stat().st_size > 0
