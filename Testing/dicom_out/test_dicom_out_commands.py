"""`segment --dicom-out` and `detect --dicom-out`: DICOM objects that agree with the CONTRACT files.

The network is the density-rule stand-in from Testing/detection (no weights needed), run at
the CT's own 4 mm spacing so the commands take seconds.
"""

from __future__ import annotations

import json

import highdicom as hd
import numpy as np
import pytest
import SimpleITK as sitk
import torch
from detection.fake_model import WINDOW, DensityNetwork
from MedSegAILib.cli.main import main
from MedSegAILib.dicom_out.commands import FINDINGS_SR, NODULES_SEG, SEGMENTATION_SEG
from MedSegAILib.jobs import runner
from MedSegAILib.models.card import parse_model_card
from MedSegAILib.models.loaded import LoadedModel
from MedSegAILib.models.terminology import TERMINOLOGY

pytestmark = pytest.mark.filterwarnings(
    "ignore:The string .* is unlikely to represent the intended person name"
)


def coarse_model() -> LoadedModel:
    labels = [
        {"value": value, "name": name, "color": [200, 40 * value, 100], "terminology": TERMINOLOGY[name]}
        for value, name in ((1, "left lung"), (2, "right lung"), (3, "lung nodule"))
    ]
    card = parse_model_card(
        {
            "name": "density-test",
            "version": "0",
            "task": "segmentation",
            "labels": labels,
            "input": {"spacing": [4.0, 4.0, 4.0], "normalization": WINDOW, "patch_size": [32, 32, 32]},
            "network": {"name": "DensityNetwork", "output_classes": ["background", "lung", "lung nodule"]},
            "weights": {"file": "none", "sha256": "0" * 64},
            "training": {},
            "metrics": {},
            "limits": [],
        }
    )
    return LoadedModel(card=card, network=DensityNetwork().eval(), device=torch.device("cpu"))


@pytest.fixture
def stand_in_model(monkeypatch):
    model = coarse_model()
    monkeypatch.setattr(runner, "resolve_model", lambda name: model.card)
    monkeypatch.setattr(runner, "load_model", lambda card, device: model)
    return model


def _nifti(path):
    return sitk.GetArrayFromImage(sitk.ReadImage(str(path)))


def test_segment_dicom_out_writes_a_seg_equal_to_the_label_map(tmp_path, shared_data, ct64, stand_in_model):
    out, dicom = tmp_path / "out", tmp_path / "dicom"

    code = main(
        [
            "segment",
            str(shared_data("cip_lung_ct/ct-64Dicom")),
            "-o",
            str(out),
            "--dicom-out",
            str(dicom),
            "--quiet",
            "--threads",
            "1",
        ]
    )

    assert code == 0
    labels = _nifti(out / "segmentation.nii.gz")
    seg = hd.seg.segread(dicom / SEGMENTATION_SEG)
    read_back = seg.get_pixels_by_source_instance(
        ct64.metadata["sop_instance_uids"], combine_segments=True, assert_missing_frames_are_empty=True
    )
    np.testing.assert_array_equal(read_back, labels)
    names = [entry["name"] for entry in json.loads((out / "labels.json").read_text())["labels"]]
    assert [seg.get_segment_description(n).segment_label for n in seg.segment_numbers] == names
    assert (
        seg.get_segment_description(1).algorithm_identification[0].AlgorithmName == stand_in_model.card.name
    )


def test_detect_dicom_out_writes_an_sr_of_every_finding_and_a_seg_of_the_nodules(
    tmp_path, shared_data, ct64, stand_in_model
):
    out, dicom = tmp_path / "out", tmp_path / "dicom"

    code = main(
        [
            "detect",
            str(shared_data("cip_lung_ct/ct-64Dicom")),
            "-o",
            str(out),
            "--dicom-out",
            str(dicom),
            "--quiet",
            "--threads",
            "1",
            "--threshold",
            "0",
        ]
    )

    assert code == 0
    findings = json.loads((out / "findings.json").read_text())["findings"]
    assert findings, "the stand-in at threshold 0 finds candidates on this CT"
    report = hd.sr.srread(dicom / FINDINGS_SR)
    groups = report.content.get_volumetric_roi_measurement_groups()
    assert [g.tracking_identifier for g in groups] == [f"finding {f['id']}" for f in findings]
    for group, finding in zip(groups, findings):
        np.testing.assert_allclose(group.roi[0].value.ravel(), finding["center"], atol=1e-3)
    seg = hd.seg.segread(dicom / NODULES_SEG)
    assert [seg.get_segment_description(n).segment_label for n in seg.segment_numbers] == [
        f"nodule {f['id']}" for f in findings
    ]
    read_back = seg.get_pixels_by_source_instance(ct64.metadata["sop_instance_uids"], combine_segments=True)
    np.testing.assert_array_equal(read_back, _nifti(out / "nodules.nii.gz"))
    evidence = report.CurrentRequestedProcedureEvidenceSequence[0].ReferencedSeriesSequence
    assert str(seg.SeriesInstanceUID) in {str(s.SeriesInstanceUID) for s in evidence}


def test_dicom_out_for_a_non_dicom_input_is_refused_before_the_model_runs(
    tmp_path, shared_data, monkeypatch, capsys
):
    def no_model(*args):
        raise AssertionError("the model must not be loaded")

    monkeypatch.setattr(runner, "load_model", no_model)
    monkeypatch.setattr(runner, "resolve_model", lambda name: coarse_model().card)

    code = main(
        [
            "segment",
            str(shared_data("cip_lung_ct/ct-64.nrrd")),
            "-o",
            str(tmp_path / "out"),
            "--dicom-out",
            str(tmp_path / "dicom"),
        ]
    )

    assert code == 2
    assert "--dicom-out needs a DICOM series" in capsys.readouterr().err
    assert not (tmp_path / "out").exists() and not (tmp_path / "dicom").exists()
