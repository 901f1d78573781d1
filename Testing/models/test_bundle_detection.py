"""RetinaNet detection bundles (lung_nodule_ct_detection structure): card, run, LPS boxes, findings."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from bundle_factory import make_detection_bundle
from MedSegAILib.detection.bundle_findings import (
    DetectedBox,
    detect_with_bundle,
    ellipsoid_mask,
    run_detection_bundle,
)
from MedSegAILib.io.volume import Volume
from MedSegAILib.models.bundle import bundle_card_data
from MedSegAILib.models.bundle_detection import BundleDetector
from MedSegAILib.models.card import parse_model_card
from MedSegAILib.models.registry import load_model


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("detection")
    return make_detection_bundle(tmp / "lung_nodule_ct_detection", tmp / "trap.txt")


@pytest.fixture(scope="module")
def card(bundle):
    return parse_model_card(bundle_card_data(bundle), source=str(bundle), folder=bundle)


@pytest.fixture(scope="module")
def loaded(card):
    return load_model(card, "cpu")


def oblique_volume(shape=(18, 36, 32)) -> Volume:
    angle = np.deg2rad(20)
    direction = np.array(
        [[np.cos(angle), -np.sin(angle), 0.0], [np.sin(angle), np.cos(angle), 0.0], [0.0, 0.0, 1.0]]
    )
    return Volume(
        np.full(shape, -900, np.int16),
        spacing=(1.3, 1.7, 2.4),
        origin=(-30.0, -40.0, 100.0),
        direction=direction,
    )


def test_detection_card_from_the_bundle(card):
    assert card.task == "detection"
    assert [label.name for label in card.labels] == ["lung nodule"]  # the metadata's task names nodules
    assert card.label("lung nodule").terminology["type"]["code"] == "27925004"
    assert card.spacing == (2.0, 2.0, 2.5)
    assert card.input["normalization"] == {"type": "window", "min": -1024.0, "max": 300.0}
    detector = card.network["detector"]
    assert detector["box_selector"]["nms_thresh"] == 0.22  # parsed from detector_ops, never run
    assert detector["box_selector"]["detections_per_img"] == 5
    assert card.network["roi_size"] == [48, 48, 24]  # set_sliding_window_inferer(roi_size=@infer_patch_size)


def test_registry_loads_the_bundle_and_it_returns_lps_boxes(bundle, loaded):
    model = loaded
    assert isinstance(model.network, BundleDetector)
    volume = oblique_volume()
    boxes = run_detection_bundle(volume, model.network)
    assert 0 < len(boxes) <= 5
    assert [b.score for b in boxes] == sorted((b.score for b in boxes), reverse=True)
    corners = volume.ijk_to_lps(np.array([[i, j, k] for i in (0, 31) for j in (0, 35) for k in (0, 17)]))
    for box in boxes:
        assert np.all(np.array(box.bbox_min) <= np.array(box.bbox_max))
        assert np.all(
            np.array(box.bbox_min) >= corners.min(axis=0) - 3.0
        )  # inside the scanned region (one model voxel)
        assert np.all(np.array(box.bbox_max) <= corners.max(axis=0) + 3.0)
    assert not (bundle.parent / "trap.txt").exists()


class BrightBoxDetector(torch.nn.Module):
    """Stands in for RetinaNetDetector: one box around the voxels above 0.9 of its own input."""

    target_box_key, pred_score_key, target_label_key = "boxes", "labels_scores", "labels"

    def forward(self, images, use_inferer=True):
        index = torch.nonzero(images[0][0] > 0.9).double()
        box = torch.cat([index.min(dim=0).values, index.max(dim=0).values])[None]
        return [{"boxes": box, "labels_scores": torch.tensor([0.8]), "labels": torch.tensor([0])}]


def test_boxes_land_at_the_right_patient_position_on_an_oblique_anisotropic_grid(card):
    volume = oblique_volume()
    centre_ijk = np.array([20, 11, 9])  # deliberately off-centre along every axis
    i, j, k = np.meshgrid(*(np.arange(n) for n in volume.shape_ijk), indexing="ij")
    lps = volume.ijk_to_lps(np.stack([i, j, k], -1).reshape(-1, 3))
    centre_lps = volume.ijk_to_lps(centre_ijk)
    inside = (np.linalg.norm(lps - centre_lps, axis=1) <= 6.0).reshape(i.shape).transpose(2, 1, 0)
    volume.array[inside] = 300
    box = run_detection_bundle(volume, BundleDetector(BrightBoxDetector(), card))[0]
    assert np.linalg.norm(np.array(box.center) - centre_lps) < 1.5
    assert box.score == pytest.approx(0.8) and box.label == 1


def test_findings_from_a_bundle_follow_the_detect_contract(loaded, card):
    volume = oblique_volume()
    result = detect_with_bundle(volume, loaded.network, threshold=0.0)
    data = result.findings_json()
    assert data["coordinate_system"] == "LPS" and data["units"] == "mm"
    assert [f["id"] for f in data["findings"]] == list(range(1, len(data["findings"]) + 1))
    assert [f["score"] for f in data["findings"]] == sorted(
        (f["score"] for f in data["findings"]), reverse=True
    )
    for finding in data["findings"]:
        assert {"center", "bbox", "diameter_mm", "volume_mm3", "score"} <= set(finding)
    assert result.labels.shape == volume.array.shape
    assert set(np.unique(result.labels)) <= set(range(len(data["findings"]) + 1))
    volume.array[10:16, 20:26, 20:26] = 300
    above = detect_with_bundle(
        volume, BundleDetector(BrightBoxDetector(), card), threshold=0.9
    )  # its one box scores 0.8
    assert above.findings == [] and not above.labels.any()


def test_ellipsoid_mask_of_a_box_has_the_box_size():
    volume = Volume(np.zeros((40, 40, 40), np.int16), spacing=(1.0, 1.0, 1.0), origin=(0.0, 0.0, 0.0))
    slices, mask = ellipsoid_mask(DetectedBox((10.0, 10.0, 10.0), (20.0, 20.0, 20.0), 0.9, 1), volume)
    assert mask.sum() == pytest.approx(4 / 3 * np.pi * 5**3, rel=0.1)
    assert [s.start for s in slices] == [10, 10, 10]


def test_an_imported_detection_bundle_runs_through_medsegai_detect(bundle, tmp_path, monkeypatch):
    import json

    import SimpleITK as sitk
    from MedSegAILib.cli.main import main

    monkeypatch.setenv("MEDSEGAI_MODELS", str(tmp_path / "models"))
    assert main(["models", "import", str(bundle), "--name", "nodule_bundle"]) == 0
    ct = oblique_volume()
    ct.array = np.random.default_rng(0).normal(-850, 30, ct.array.shape).astype(np.float32)
    ct.array[6:12, 14:22, 12:20] = 40.0
    sitk.WriteImage(ct.to_sitk(), str(tmp_path / "ct.nii.gz"))

    out = tmp_path / "out"
    assert (
        main(
            [
                "detect",
                str(tmp_path / "ct.nii.gz"),
                "-o",
                str(out),
                "--model",
                "nodule_bundle",
                "--threshold",
                "0",
                "--quiet",
            ]
        )
        == 0
    )
    findings = json.loads((out / "findings.json").read_text())
    assert findings["coordinate_system"] == "LPS" and len(findings["findings"]) >= 1
    nodules = Volume.from_sitk(sitk.ReadImage(str(out / "nodules.nii.gz")))
    assert nodules.same_grid(ct)
    assert json.loads((out / "run.json").read_text())["model"]["name"] == "nodule_bundle"
    assert (
        main(
            [
                "detect",
                str(tmp_path / "ct.nii.gz"),
                "-o",
                str(tmp_path / "out2"),
                "--model",
                "nodule_bundle",
                "--gradcam",
            ]
        )
        == 2
    )
    assert not (tmp_path / "out2").exists()
