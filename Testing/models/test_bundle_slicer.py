"""Bundle outputs reach the Slicer side: segment/detect output folders load into real MRML nodes."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

slicer = pytest.importorskip("slicer", reason="needs slicer-core (pip install slicer-core)")
vtk = pytest.importorskip("vtk", reason="needs vtk (comes with slicer-core)")

from bundle_factory import make_detection_bundle, make_segmentation_bundle  # noqa: E402
from MedSegAILib.cli.main import main  # noqa: E402
from MedSegAILib.detection.bundle_findings import detect_with_bundle  # noqa: E402
from MedSegAILib.io.atomic import write_json  # noqa: E402
from MedSegAILib.io.volume import Volume  # noqa: E402
from MedSegAILib.io.writer import write_label_map  # noqa: E402
from MedSegAILib.models.install import import_model  # noqa: E402
from MedSegAILib.models.registry import load_model  # noqa: E402
from MedSegAILib.models.terminology import slicer_terminology_string, terminology_for  # noqa: E402
from MedSegAILib.slicer.outputs import load_detect_outputs, load_segment_outputs  # noqa: E402


@pytest.fixture
def scene():
    mrml_scene = slicer.vtkMRMLScene()
    logics = [
        slicer.vtkMRMLApplicationLogic(),
        slicer.vtkSlicerSegmentationsModuleLogic(),
        slicer.vtkSlicerMarkupsLogic(),
    ]
    for logic in logics:
        logic.SetMRMLScene(mrml_scene)
    previous = getattr(slicer, "mrmlScene", None)
    slicer.mrmlScene = mrml_scene
    yield mrml_scene
    for logic in reversed(logics):
        logic.SetMRMLScene(None)
    mrml_scene.Clear(True)
    slicer.mrmlScene = previous


def ct_volume() -> Volume:
    angle = np.deg2rad(15)
    direction = np.array(
        [[np.cos(angle), -np.sin(angle), 0.0], [np.sin(angle), np.cos(angle), 0.0], [0.0, 0.0, 1.0]]
    )
    array = np.random.default_rng(2).normal(-650, 250, (20, 36, 40)).astype(np.int16)
    return Volume(array, spacing=(1.6, 1.4, 2.2), origin=(-30.0, -25.0, -40.0), direction=direction)


def volume_node(scene, volume: Volume):
    node = scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "CT")
    slicer.util.updateVolumeFromArray(node, volume.array)
    x, y, z = volume.origin
    node.SetOrigin(-x, -y, z)
    node.SetSpacing(*volume.spacing)
    node.SetIJKToRASDirections(*(np.diag([-1.0, -1.0, 1.0]) @ volume.direction).flatten().tolist())
    return node


def test_segmentation_bundle_output_becomes_named_segments_with_terminology(scene, tmp_path):
    bundle = make_segmentation_bundle(tmp_path / "bundle_src" / "chest_bundle", tmp_path / "trap.txt")
    installed = import_model(bundle, models_dir=tmp_path / "models")
    volume = ct_volume()
    ct_path = tmp_path / "ct.nrrd"
    sitk.WriteImage(volume.to_sitk(), str(ct_path))
    out = tmp_path / "out"
    assert (
        main(
            [
                "segment",
                str(ct_path),
                "-o",
                str(out),
                "--model",
                str(installed.folder),
                "--device",
                "cpu",
                "--quiet",
            ]
        )
        == 0
    )

    outputs = load_segment_outputs(out, volume_node(scene, volume), "CT")
    segmentation = outputs.segmentation.GetSegmentation()
    segments = {
        segment.GetName(): segment
        for segment in map(segmentation.GetNthSegment, range(segmentation.GetNumberOfSegments()))
    }
    assert set(segments) == {"left lung", "right lung", "liver"}

    def terminology_tag(segment) -> str:
        tag = vtk.reference("")
        return str(tag) if segment.GetTag(segment.GetTerminologyEntryTagName(), tag) else ""

    assert terminology_tag(segments["left lung"]) == slicer_terminology_string(terminology_for("left lung"))
    assert "99MEDSEGAI^LIVER^liver" in terminology_tag(segments["liver"])


def test_detection_bundle_findings_become_markups_at_their_ras_positions(scene, tmp_path):
    bundle = make_detection_bundle(
        tmp_path / "bundle_src" / "lung_nodule_ct_detection", tmp_path / "trap.txt"
    )
    installed = import_model(bundle, models_dir=tmp_path / "models")
    volume = ct_volume()
    result = detect_with_bundle(volume, load_model(installed, "cpu").network, threshold=0.0)
    out = tmp_path / "detect_out"
    out.mkdir()
    write_json(out / "findings.json", result.findings_json())  # as `detect` writes them
    write_label_map(result.labels, volume, out / "nodules.nii.gz")

    outputs = load_detect_outputs(out, volume_node(scene, volume), "CT")
    findings = result.findings_json()["findings"]
    assert outputs.markups.GetNumberOfControlPoints() == len(findings) > 0
    x, y, z = findings[0]["center"]
    np.testing.assert_allclose(outputs.markups.GetNthControlPointPosition(0), (-x, -y, z), atol=0.01)
    assert outputs.nodules.GetSegmentation().GetNumberOfSegments() == len(findings)
