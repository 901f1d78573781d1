"""Jobs end to end on real MRML: volume node -> child process (a stand-in engine) -> nodes.

The stand-in engine honours the CONTRACT command line and outputs, so the module's side is
tested without the network; a fake runner covers failures and cancel.
"""

from __future__ import annotations

import json
import os
import stat
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from MedSegAIModule.jobs import JobController
from MedSegAIModule.parameters import Settings
from MedSegAIModule.process_runner import CANCELLED, FAILED, JobResult, Progress, SubprocessRunner

STAND_IN_ENGINE = """\
#!{python}
# Stand-in for `PythonSlicer -m MedSegAILib ...`: thresholds the input like a model would.
import json, sys
import SimpleITK as sitk
args = sys.argv[1:]
assert args[:2] == ["-m", "MedSegAILib"], args
command, source, outdir = args[2], args[3], args[args.index("-o") + 1]
options = args[args.index("-o") + 2:]
json.dump({{"command": command, "source": source, "options": options}}, open("{record}", "w"))
image = sitk.ReadImage(source)
print("[ 30%] preprocess", file=sys.stderr, flush=True)
labels = sitk.Cast(image > 0, sitk.sitkUInt8)
import os; os.makedirs(outdir, exist_ok=True)
sitk.WriteImage(labels, os.path.join(outdir, "segmentation.nii.gz"))
labels_json = {{"labels": [{{"value": 1, "name": "left lung", "color": [0, 151, 206]}}]}}
json.dump(labels_json, open(os.path.join(outdir, "labels.json"), "w"))
print("[100%] done", file=sys.stderr, flush=True)
"""


class RecordingView:
    def __init__(self):
        self.busy, self.progress, self.status, self.errors = [], [], [], []

    def set_busy(self, busy):
        self.busy.append(busy)

    def show_progress(self, fraction, message):
        self.progress.append((fraction, message))

    def show_status(self, message):
        self.status.append(message)

    def show_error(self, message):
        self.errors.append(message)


class FakeRunner:
    """A runner that ends the way a test says, without a process."""

    def __init__(self, result: JobResult | None):
        self.final, self.result, self.argv, self.cancelled = result, None, None, False

    def start(self, argv, env=None):
        self.argv = list(argv)

    def poll(self):
        self.result = self.final
        return [Progress(0.5, "inference")]

    def cancel(self):
        self.cancelled = True
        self.final = JobResult(CANCELLED, -15, "Cancelled.")


def run_until_done(controller, timeout=60.0):
    deadline = time.monotonic() + timeout
    while controller.poll():
        assert time.monotonic() < deadline, "job did not finish"
        time.sleep(0.02)


@pytest.fixture
def stand_in_engine(tmp_path) -> tuple[str, Path]:
    record = tmp_path / "invocation.json"
    path = tmp_path / "stand_in_python"
    path.write_text(STAND_IN_ENGINE.format(python=sys.executable, record=record))
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path), record


@pytest.mark.skipif(os.name != "posix", reason="the stand-in engine is a script with a shebang")
def test_segment_runs_out_of_process_and_loads_a_segmentation(ct_node, ct_grid, stand_in_engine):
    python, record = stand_in_engine
    view, loaded = RecordingView(), []
    controller = JobController(SubprocessRunner(), view, python=python, env=dict(os.environ))

    controller.segment(ct_node, Settings(device="cpu", fast=True, uncertainty_samples=4), loaded.append)
    run_until_done(controller)

    assert view.errors == [] and view.status == ["Segmentation done."]
    assert view.busy == [True, False]
    assert (0.3, "preprocess") in view.progress
    invocation = json.loads(record.read_text())
    assert invocation["command"] == "segment"
    assert invocation["options"] == ["--device", "cpu", "--uncertainty", "4", "--fast"]
    segmentation = loaded[0].segmentation
    assert segmentation.GetSegmentation().GetNthSegment(0).GetName() == "left lung"
    assert not Path(invocation["source"]).parent.exists()  # the work folder is removed


def test_an_engine_error_reaches_the_view_and_the_work_folder_is_removed(ct_node):
    runner = FakeRunner(
        JobResult(
            FAILED, 2, "Input problem: input.nrrd: grid too small for the model; give the whole chest CT"
        )
    )
    view = RecordingView()
    controller = JobController(runner, view, python="python", env={})

    controller.segment(ct_node, Settings(), lambda outputs: pytest.fail("nothing to load"))
    workdir = Path(runner.argv[4]).parent
    assert (workdir / "input.nrrd").exists()
    run_until_done(controller)

    assert view.errors == ["Input problem: input.nrrd: grid too small for the model; give the whole chest CT"]
    assert view.busy == [True, False]
    assert not workdir.exists()


def test_cancel_stops_the_job_and_reports_it(ct_node):
    runner = FakeRunner(None)
    view = RecordingView()
    controller = JobController(runner, view, python="python", env={})
    controller.detect(ct_node, Settings(), lambda outputs: pytest.fail("nothing to load"))
    assert controller.poll()

    controller.cancel()
    run_until_done(controller)

    assert runner.cancelled and view.status == ["Detection cancelled."] and view.errors == []
    assert not controller.running


def test_missing_outputs_after_success_are_a_message_not_a_traceback(ct_node):
    runner = FakeRunner(JobResult("succeeded", 0, "Done."))
    view = RecordingView()
    controller = JobController(runner, view, python="python", env={})
    controller.segment(ct_node, Settings(), lambda outputs: None)
    run_until_done(controller)
    assert len(view.errors) == 1 and "segmentation is missing" in view.errors[0]


def test_no_volume_and_no_export_folder_are_explained(scene, ct_node):
    view = RecordingView()
    controller = JobController(FakeRunner(None), view, python="python", env={})
    controller.segment(None, Settings(), lambda outputs: None)
    segmentation = scene.AddNewNodeByClass("vtkMRMLSegmentationNode")
    controller.export(segmentation, ct_node, Settings(export_folder=""), lambda folder: None)
    assert view.errors == ["Select an input volume first.", "Choose an export folder first."]
    assert not controller.running


def test_export_writes_the_edited_segmentation_and_calls_export_stl(scene, ct_node, ct_grid, tmp_path):
    from MedSegAILib.io import write_label_map
    from MedSegAILib.slicer.outputs import load_segment_outputs

    labels = np.zeros(ct_grid.array.shape, np.uint8)
    labels[1:4, 1:4, 1:4] = 1
    write_label_map(labels, ct_grid, tmp_path / "segmentation.nii.gz")
    (tmp_path / "labels.json").write_text(
        '{"labels": [{"value": 1, "name": "right lung", "color": [1, 2, 3]}]}'
    )
    segmentation = load_segment_outputs(tmp_path, ct_node, "ct").segmentation
    runner = FakeRunner(JobResult("succeeded", 0, "Done."))
    view, exported = RecordingView(), []
    controller = JobController(runner, view, python="python", env={})

    settings = Settings(
        export_folder=str(tmp_path / "meshes"),
        export_format="ply",
        export_coords="ras",
        smoothing=0,
        decimation=0.5,
    )
    controller.export(segmentation, ct_node, settings, exported.append)
    argv = runner.argv
    assert argv[:4] == ["python", "-m", "MedSegAILib", "export-stl"]
    assert Path(argv[4]).name == "segmentation.nii.gz" and Path(argv[4]).exists()
    assert argv[5:] == [
        "-o",
        str(tmp_path / "meshes"),
        "--labels",
        str(Path(argv[4]).parent / "labels.json"),
        "--format",
        "ply",
        "--coords",
        "ras",
        "--smooth",
        "0",
        "--decimate",
        "0.5",
    ]
    run_until_done(controller)
    assert exported == [tmp_path / "meshes"] and view.status == ["Export done."]


def test_dicom_export_gives_the_engine_the_original_series_and_dicom_out(dicom_ct, tmp_path):
    node, lookup, files, _ = dicom_ct
    settings = Settings(
        device="cpu", threshold=0.35, dicom_export=True, dicom_folder=str(tmp_path / "dicom out")
    )
    for start, command in [(JobController.segment, "segment"), (JobController.detect, "detect")]:
        runner = FakeRunner(None)
        controller = JobController(runner, RecordingView(), python="python", env={}, file_for_instance=lookup)

        start(controller, node, settings, lambda outputs: pytest.fail("cancelled"))

        argv = runner.argv
        assert argv[3] == command
        series = Path(argv[4])
        assert series.is_dir() and sorted(p.resolve() for p in series.iterdir()) == sorted(
            f.resolve() for f in files
        )
        assert argv[-2:] == ["--dicom-out", str(tmp_path / "dicom out")]
        controller.cancel()
        run_until_done(controller)
        assert not series.exists()
    assert argv[5:-2] == ["-o", str(series.parent / "out"), "--device", "cpu", "--threshold", "0.35"]


def test_dicom_export_of_a_converted_volume_or_without_a_folder_is_explained(ct_node, tmp_path):
    runner, view = FakeRunner(None), RecordingView()
    controller = JobController(runner, view, python="python", env={}, file_for_instance=lambda uid: "")

    controller.segment(ct_node, Settings(dicom_export=True), lambda outputs: None)
    controller.detect(ct_node, Settings(dicom_export=True, dicom_folder=str(tmp_path)), lambda outputs: None)

    assert view.errors[0] == "Choose a folder for the DICOM SEG / SR first."
    assert view.errors[1].startswith(
        "chest CT: the volume was not loaded from DICOM, so no DICOM SEG / SR can refer to it"
    )
    assert runner.argv is None and not controller.running
