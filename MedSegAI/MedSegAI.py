"""MedSegAI: deep-learning chest CT segmentation, nodule detection, explanations,
uncertainty and surface export in 3D Slicer.

The engine (``MedSegAILib``) runs out of process through the ``medsegai`` command line, so
Slicer never freezes and a crash in the network cannot take Slicer down. This file holds
only the module metadata and thin Widget / Logic / Test classes; the work is done by
``MedSegAIModule`` (panel, jobs, installation) and ``MedSegAILib.slicer`` (MRML adapters).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import slicer
from MedSegAILib.slicer.dicom_source import slicer_dicom_database_file
from MedSegAILib.slicer.outputs import (
    DetectOutputs,
    SegmentOutputs,
    load_detect_outputs,
    load_segment_outputs,
)
from MedSegAILib.slicer.segmentation_nodes import write_segmentation_label_map
from MedSegAIModule.engine_command import (
    detect_command,
    engine_environment,
    engine_python,
    export_command,
    segment_command,
)
from MedSegAIModule.jobs import engine_input_for
from MedSegAIModule.parameters import Settings
from MedSegAIModule.process_runner import SUCCEEDED, SubprocessRunner
from MedSegAIModule.widget import MedSegAIPanel
from slicer.ScriptedLoadableModule import (
    ScriptedLoadableModule,
    ScriptedLoadableModuleLogic,
    ScriptedLoadableModuleTest,
    ScriptedLoadableModuleWidget,
)


class MedSegAI(ScriptedLoadableModule):
    """Module metadata."""

    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = "MedSegAI"
        self.parent.categories = ["Segmentation"]
        self.parent.dependencies = []
        self.parent.contributors = ["MedSegAI developers"]
        self.parent.helpText = (
            "Segments the lungs and lung nodules on chest CT with a deep-learning model, detects nodules "
            "(findings table and markups), shows Grad-CAM explanations and Monte-Carlo-dropout uncertainty, "
            "and exports surfaces (STL/OBJ/PLY) for surgical planning. The network runs in a separate "
            "process, on the GPU when one works. Results are ordinary segmentation, markups, table and "
            "volume nodes: correct them in Segment Editor and save them with the scene. "
            "See <a href='https://github.com/medsegai/SlicerMedSegAI/blob/main/docs/slicer.md'>"
            "the documentation</a>."
        )
        self.parent.acknowledgementText = (
            "Built on 3D Slicer, MONAI, PyTorch, SimpleITK and highdicom. Test CT from public collections "
            "(see the data sources in the repository). Not a medical device: for research use only."
        )


class MedSegAIWidget(ScriptedLoadableModuleWidget):
    """Loads ``Resources/UI/MedSegAI.ui`` and hands it to :class:`MedSegAIModule.widget.MedSegAIPanel`."""

    def setup(self):
        ScriptedLoadableModuleWidget.setup(self)
        panel_widget = slicer.util.loadUI(self.resourcePath("UI/MedSegAI.ui"))
        self.layout.addWidget(panel_widget)
        self.ui = slicer.util.childWidgetVariables(panel_widget)
        panel_widget.setMRMLScene(slicer.mrmlScene)
        self.logic = MedSegAILogic()
        self.panel = MedSegAIPanel(self.ui, self.logic.getParameterNode())

    def cleanup(self):
        if getattr(self, "panel", None) is not None:
            self.panel.cleanup()


class MedSegAILogic(ScriptedLoadableModuleLogic):
    """Scripting entry points: the same steps as the panel, run to completion."""

    def segment(
        self, volume_node, settings: Settings | None = None, timeout: float = 3600.0
    ) -> SegmentOutputs:
        """Segment ``volume_node`` (blocking; for scripts and the self-test).

        With ``settings.dicom_export`` (a volume loaded from DICOM) the engine reads its DICOM
        series and writes a DICOM SEG into ``settings.dicom_folder``; ``detect`` likewise
        writes the findings' SEG and SR.

        Raises:
            RuntimeError: the engine failed; the message is the engine's one-line error.
        """
        with tempfile.TemporaryDirectory(prefix="medsegai-") as folder:
            outdir = self._run_engine("segment", volume_node, Path(folder), settings or Settings(), timeout)
            return load_segment_outputs(outdir, volume_node, volume_node.GetName())

    def detect(self, volume_node, settings: Settings | None = None, timeout: float = 3600.0) -> DetectOutputs:
        """Detect nodules in ``volume_node`` (blocking)."""
        with tempfile.TemporaryDirectory(prefix="medsegai-") as folder:
            outdir = self._run_engine("detect", volume_node, Path(folder), settings or Settings(), timeout)
            return load_detect_outputs(outdir, volume_node, volume_node.GetName())

    def export_surfaces(
        self, segmentation_node, volume_node, settings: Settings, timeout: float = 600.0
    ) -> Path:
        """Export the segmentation's surfaces into ``settings.export_folder`` (blocking)."""
        with tempfile.TemporaryDirectory(prefix="medsegai-") as folder:
            label_path, labels_path = Path(folder) / "segmentation.nii.gz", Path(folder) / "labels.json"
            write_segmentation_label_map(segmentation_node, volume_node, label_path, labels_path)
            self._run(export_command(engine_python(), label_path, labels_path, settings), timeout)
        return Path(settings.export_folder)

    def _run_engine(
        self, command: str, volume_node, folder: Path, settings: Settings, timeout: float
    ) -> Path:
        input_path, dicom_out = engine_input_for(volume_node, settings, folder, slicer_dicom_database_file)
        if command == "segment":
            argv = segment_command(engine_python(), input_path, folder / "out", settings, dicom_out)
        else:
            argv = detect_command(engine_python(), input_path, folder / "out", settings, dicom_out=dicom_out)
        self._run(argv, timeout)
        return folder / "out"

    @staticmethod
    def _run(argv: list[str], timeout: float) -> None:
        runner = SubprocessRunner()
        runner.start(argv, engine_environment())
        result = runner.wait(timeout)
        if result is None:
            runner.cancel()
            raise RuntimeError(f"the engine did not finish within {timeout:.0f} s")
        if result.status != SUCCEEDED:
            raise RuntimeError(result.message)


class MedSegAITest(ScriptedLoadableModuleTest):
    """Self-test in real Slicer: load a CT, segment it, check the segments, export STL."""

    def setUp(self):
        slicer.mrmlScene.Clear(0)

    def runTest(self):
        self.setUp()
        self.test_segment_and_export()

    def test_segment_and_export(self):
        import SampleData

        self.delayDisplay("Loading a chest CT (Sample Data: CTChest)")
        volume = SampleData.downloadSample("CTChest")
        self.assertIsNotNone(volume)
        logic = MedSegAILogic()

        self.delayDisplay("Segmenting (out of process)")
        outputs = logic.segment(volume, Settings(device="auto", fast=True))
        segmentation = outputs.segmentation.GetSegmentation()
        names = [segmentation.GetNthSegment(i).GetName() for i in range(segmentation.GetNumberOfSegments())]
        for expected in ("left lung", "right lung"):
            self.assertIn(expected, names)
        left_lung = slicer.util.arrayFromSegmentBinaryLabelmap(
            outputs.segmentation, segmentation.GetSegmentIdBySegmentName("left lung"), volume
        )
        spacing = volume.GetSpacing()
        volume_ml = left_lung.sum() * spacing[0] * spacing[1] * spacing[2] / 1000.0
        self.assertGreater(volume_ml, 500.0, "a left lung under 0.5 L on CTChest means the model failed")

        self.delayDisplay("Exporting STL")
        with tempfile.TemporaryDirectory(prefix="medsegai-selftest-") as folder:
            logic.export_surfaces(outputs.segmentation, volume, Settings(export_folder=folder))
            written = sorted(os.listdir(folder))
            self.assertIn("left_lung.stl", written)
            model = slicer.util.loadModel(os.path.join(folder, "left_lung.stl"))
            self.assertGreater(model.GetPolyData().GetNumberOfPoints(), 100)
        self.delayDisplay("MedSegAI self-test passed")
