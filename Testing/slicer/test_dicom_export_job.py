"""The panel's DICOM export through the real engine command: the job's command line runs
`medsegai segment|detect` (in process, with the density stand-in network of
Testing/detection at the CT's own 4 mm spacing, so no weights are needed) on the node's own
DICOM series; the SEG/SR land in the chosen folder and reference that series; "Load DICOM SEG"
brings the SEG back onto the volume with the engine's names and voxels.

`segment` puts its findings in the "lung nodule" segment. At 4 mm the stand-in finds none
(the segment is empty, in the node and in the SEG alike); at 1.5 mm it finds two small ones,
whose voxels must reach the node and the SEG unchanged.
"""

from __future__ import annotations

import highdicom as hd
import numpy as np
import pytest
import torch

slicer = pytest.importorskip("slicer")
vtk = pytest.importorskip("vtk")

from detection.fake_model import WINDOW, DensityNetwork  # noqa: E402
from MedSegAILib.cli.main import main  # noqa: E402
from MedSegAILib.jobs import runner  # noqa: E402
from MedSegAILib.models.card import parse_model_card  # noqa: E402
from MedSegAILib.models.loaded import LoadedModel  # noqa: E402
from MedSegAILib.models.terminology import TERMINOLOGY  # noqa: E402
from MedSegAILib.slicer.dicom_seg_import import import_dicom_seg_onto_volume  # noqa: E402
from MedSegAILib.slicer.volume_nodes import read_output_image  # noqa: E402
from MedSegAIModule import jobs  # noqa: E402
from MedSegAIModule.jobs import JobController  # noqa: E402
from MedSegAIModule.parameters import Settings  # noqa: E402
from MedSegAIModule.process_runner import FAILED, SUCCEEDED, JobResult  # noqa: E402

pytestmark = pytest.mark.filterwarnings(
    "ignore:The string .* is unlikely to represent the intended person name"
)


class InProcessEngine:
    """A runner that runs the job's `python -m MedSegAILib ...` command line with the engine's own `main`."""

    def __init__(self):
        self.argv, self.result = None, None

    def start(self, argv, env=None):
        assert list(argv[1:3]) == ["-m", "MedSegAILib"]
        self.argv = list(argv)
        code = main(self.argv[3:] + ["--quiet", "--threads", "1"])
        self.result = JobResult(
            SUCCEEDED if code == 0 else FAILED, code, "Done." if code == 0 else f"exit {code}"
        )

    def poll(self):
        return []

    def cancel(self):
        pass


class View:
    def __init__(self):
        self.status, self.errors = [], []

    def set_busy(self, busy):
        pass

    def show_progress(self, fraction, message):
        pass

    def show_status(self, message):
        self.status.append(message)

    def show_error(self, message):
        self.errors.append(message)


@pytest.fixture
def stand_in_model(monkeypatch, request):
    """The stand-in network at ``request.param`` mm (default 4, the CT's own spacing)."""
    spacing = float(getattr(request, "param", 4.0))
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
            "input": {"spacing": [spacing] * 3, "normalization": WINDOW, "patch_size": [32, 32, 32]},
            "network": {"name": "DensityNetwork", "output_classes": ["background", "lung", "lung nodule"]},
            "weights": {"file": "none", "sha256": "0" * 64},
            "training": {},
            "metrics": {},
            "limits": [],
        }
    )
    model = LoadedModel(card=card, network=DensityNetwork().eval(), device=torch.device("cpu"))
    monkeypatch.setattr(runner, "resolve_model", lambda name: card)
    monkeypatch.setattr(runner, "load_model", lambda card, device: model)
    return model


@pytest.fixture
def ct64_from_dicom(dicom_volume_node, shared_data):
    return dicom_volume_node(shared_data("cip_lung_ct/ct-64Dicom"), "ct-64")


def segment_masks(segmentation_node, volume_node) -> dict[str, np.ndarray]:
    """Each segment's voxels on the volume's grid, by segment name (exported one segment at a
    time, so a segment's mask does not depend on its index or on the other segments)."""
    scene, segmentation = volume_node.GetScene(), segmentation_node.GetSegmentation()
    masks = {}
    for index in range(segmentation.GetNumberOfSegments()):
        segment_ids = vtk.vtkStringArray()
        segment_ids.InsertNextValue(segmentation.GetNthSegmentID(index))
        labelmap = scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode")
        assert slicer.vtkSlicerSegmentationsModuleLogic.ExportSegmentsToLabelmapNode(
            segmentation_node, segment_ids, labelmap, volume_node
        )
        masks[segmentation.GetNthSegment(index).GetName()] = slicer.util.arrayFromVolume(labelmap) > 0
        scene.RemoveNode(labelmap)
    return masks


@pytest.mark.parametrize(
    "stand_in_model, lesions",
    [(4.0, False), (1.5, True)],
    ids=["no lesion", "lesions"],
    indirect=["stand_in_model"],
)
def test_segment_with_dicom_export_writes_a_seg_of_the_series_that_loads_back_onto_the_volume(
    ct64_from_dicom, stand_in_model, lesions, tmp_path, monkeypatch
):
    node, lookup, _, volume = ct64_from_dicom
    view, loaded, engine_maps = View(), [], []
    load_outputs = jobs.load_segment_outputs

    def load_segment_outputs(outdir, reference_volume_node, name):  # keep the engine's label map
        engine_maps.append(np.rint(read_output_image(outdir / "segmentation.nii.gz").array).astype(int))
        return load_outputs(outdir, reference_volume_node, name)

    monkeypatch.setattr(jobs, "load_segment_outputs", load_segment_outputs)
    controller = JobController(InProcessEngine(), view, python="python", env={}, file_for_instance=lookup)

    controller.segment(
        node, Settings(device="cpu", dicom_export=True, dicom_folder=str(tmp_path / "dicom")), loaded.append
    )
    assert not controller.poll()

    assert view.errors == [] and view.status == [f"Segmentation done; DICOM written to {tmp_path / 'dicom'}."]
    seg_path = tmp_path / "dicom" / "segmentation_seg.dcm"
    seg = hd.seg.segread(seg_path)
    assert str(seg.ReferencedSeriesSequence[0].SeriesInstanceUID) == volume.metadata["series_uid"]
    names = [label.name for label in loaded[0].labels]
    assert names == ["left lung", "right lung", "lung nodule"]

    # the node holds exactly the engine's voxels, segment by segment (the lesions included)
    [engine_labels] = engine_maps
    node_masks = segment_masks(loaded[0].segmentation, node)
    assert list(node_masks) == names
    for label in loaded[0].labels:
        np.testing.assert_array_equal(node_masks[label.name], engine_labels == label.value)
    assert node_masks["left lung"].any() and node_masks["right lung"].any()
    assert node_masks["lung nodule"].any() == lesions

    # the SEG holds every segment of the model (an empty one too), with the node's voxels
    reloaded = segment_masks(import_dicom_seg_onto_volume(seg_path, node, lookup), node)
    assert list(reloaded) == names
    for name in names:
        np.testing.assert_array_equal(reloaded[name], node_masks[name])


def test_detect_with_dicom_export_writes_the_findings_sr_and_seg(ct64_from_dicom, stand_in_model, tmp_path):
    node, lookup, _, volume = ct64_from_dicom
    view, loaded = View(), []
    controller = JobController(InProcessEngine(), view, python="python", env={}, file_for_instance=lookup)

    settings = Settings(device="cpu", threshold=0.0, dicom_export=True, dicom_folder=str(tmp_path / "dicom"))
    controller.detect(node, settings, loaded.append)
    assert not controller.poll()

    assert view.errors == [] and loaded[0].findings
    report = hd.sr.srread(tmp_path / "dicom" / "findings_sr.dcm")
    groups = report.content.get_volumetric_roi_measurement_groups()
    assert [g.tracking_identifier for g in groups] == [f"finding {f.id}" for f in loaded[0].findings]
    for group, finding in zip(groups, loaded[0].findings):  # the SR's LPS centre is the markup's RAS point
        x, y, z = group.roi[0].value.ravel()
        np.testing.assert_allclose((-x, -y, z), finding.center_ras, atol=0.01)
    assert (tmp_path / "dicom" / "nodules_seg.dcm").is_file()
    evidence = report.CurrentRequestedProcedureEvidenceSequence[0].ReferencedSeriesSequence
    assert volume.metadata["series_uid"] in {str(series.SeriesInstanceUID) for series in evidence}
