"""The panel's behaviour inside Slicer: widgets <-> settings, buttons -> jobs, results -> views.

This is the only Qt module (Slicer's PythonQt ``qt``/``ctk``). The work is done by
:class:`~MedSegAIModule.jobs.JobController` (tested without Qt); this class wires the ``.ui``
widgets to it and implements its :class:`~MedSegAIModule.jobs.JobView`.
"""

from __future__ import annotations

from typing import Any

import qt
import slicer
from MedSegAILib.errors import MedSegAIError
from MedSegAILib.slicer.correction_export import remember_prediction, save_correction
from MedSegAILib.slicer.dicom_source import instance_uids, slicer_dicom_database_file
from MedSegAILib.slicer.findings_nodes import Finding
from MedSegAILib.slicer.outputs import DetectOutputs, SegmentOutputs

from .install import PROTECTED, REQUIREMENTS, install_dependencies, installed_versions, plan_install
from .jobs import JobController
from .parameters import Settings, input_volume, job_settings, read_settings, write_settings
from .process_runner import SubprocessRunner

POLL_INTERVAL_MS = 100
DEFAULT_MODEL_TEXT = "Built-in chest CT (lungs, nodules)"


class MedSegAIPanel:
    """Connects the loaded ``MedSegAI.ui`` (``ui``: its named child widgets) to the jobs."""

    def __init__(self, ui: Any, parameter_node: Any) -> None:
        self.ui = ui
        self.parameter_node = parameter_node
        self.controller = JobController(
            SubprocessRunner(), self, file_for_instance=slicer_dicom_database_file
        )
        self.timer = qt.QTimer()
        self.timer.setInterval(POLL_INTERVAL_MS)
        self.timer.connect("timeout()", self._poll)
        self.segmentation_node: Any | None = None
        self.findings: list[Finding] = []
        self.maps: dict[str, Any] = {}
        self.entropy_node: Any | None = None
        self._connect()
        self._show_settings()

    # -- settings <-> widgets ------------------------------------------------
    def _connect(self) -> None:
        ui = self.ui
        ui.segmentButton.connect("clicked()", self.on_segment)
        ui.cancelButton.connect("clicked()", self.controller.cancel)
        ui.detectButton.connect("clicked()", self.on_detect)
        ui.explainButton.connect("clicked()", self.on_explain)
        ui.exportButton.connect("clicked()", self.on_export)
        ui.saveCorrectionButton.connect("clicked()", self.on_save_correction)
        ui.loadDicomSegButton.connect("clicked()", self.on_load_dicom_seg)
        ui.inputVolumeSelector.connect("currentNodeChanged(vtkMRMLNode*)", self._show_dicom_availability)
        ui.findingsTable.connect("cellClicked(int,int)", self.on_finding_clicked)
        ui.opacitySlider.connect("valueChanged(double)", self.on_opacity)
        ui.showEntropyCheckBox.connect("toggled(bool)", self.on_show_entropy)
        for widget, signal in [
            (ui.inputVolumeSelector, "currentNodeChanged(vtkMRMLNode*)"),
            (ui.modelComboBox, "currentTextChanged(QString)"),
            (ui.deviceComboBox, "currentTextChanged(QString)"),
            (ui.fastCheckBox, "toggled(bool)"),
            (ui.uncertaintySamplesSpinBox, "valueChanged(int)"),
            (ui.thresholdSpinBox, "valueChanged(double)"),
            (ui.dicomExportCheckBox, "toggled(bool)"),
            (ui.dicomFolderButton, "directoryChanged(QString)"),
            (ui.exportFolderButton, "directoryChanged(QString)"),
            (ui.exportFormatComboBox, "currentTextChanged(QString)"),
            (ui.exportCoordsComboBox, "currentTextChanged(QString)"),
            (ui.smoothingSpinBox, "valueChanged(int)"),
            (ui.decimationSpinBox, "valueChanged(double)"),
        ]:
            widget.connect(signal, self._store_settings)

    def settings(self) -> Settings:
        """The settings shown in the panel."""
        ui = self.ui
        model = ui.modelComboBox.currentText
        return Settings(
            model="" if model == DEFAULT_MODEL_TEXT else model,
            device=ui.deviceComboBox.currentText,
            fast=ui.fastCheckBox.checked,
            uncertainty_samples=ui.uncertaintySamplesSpinBox.value,
            gradcam_target="",
            threshold=ui.thresholdSpinBox.value,
            dicom_export=ui.dicomExportCheckBox.checked,
            dicom_folder=ui.dicomFolderButton.directory,
            export_folder=ui.exportFolderButton.directory,
            export_format=ui.exportFormatComboBox.currentText,
            export_coords=ui.exportCoordsComboBox.currentText,
            smoothing=ui.smoothingSpinBox.value,
            decimation=ui.decimationSpinBox.value,
        )

    def _store_settings(self, *args: Any) -> None:
        write_settings(self.parameter_node, self.settings(), self.ui.inputVolumeSelector.currentNode())

    def _show_settings(self) -> None:
        ui, settings = self.ui, read_settings(self.parameter_node)
        widgets = [
            ui.inputVolumeSelector,
            ui.modelComboBox,
            ui.deviceComboBox,
            ui.fastCheckBox,
            ui.uncertaintySamplesSpinBox,
            ui.thresholdSpinBox,
            ui.dicomExportCheckBox,
            ui.dicomFolderButton,
            ui.exportFolderButton,
            ui.exportFormatComboBox,
            ui.exportCoordsComboBox,
            ui.smoothingSpinBox,
            ui.decimationSpinBox,
        ]
        blocked = [widget.blockSignals(True) for widget in widgets]
        ui.inputVolumeSelector.setCurrentNode(input_volume(self.parameter_node))
        ui.modelComboBox.setCurrentText(settings.model or DEFAULT_MODEL_TEXT)
        ui.deviceComboBox.setCurrentText(settings.device)
        ui.fastCheckBox.checked = settings.fast
        ui.uncertaintySamplesSpinBox.value = settings.uncertainty_samples
        ui.thresholdSpinBox.value = settings.threshold
        ui.dicomExportCheckBox.checked = settings.dicom_export
        if settings.dicom_folder:
            ui.dicomFolderButton.directory = settings.dicom_folder
        if settings.export_folder:
            ui.exportFolderButton.directory = settings.export_folder
        ui.exportFormatComboBox.setCurrentText(settings.export_format)
        ui.exportCoordsComboBox.setCurrentText(settings.export_coords)
        ui.smoothingSpinBox.value = settings.smoothing
        ui.decimationSpinBox.value = settings.decimation
        for widget, was_blocked in zip(widgets, blocked):
            widget.blockSignals(was_blocked)
        self._show_dicom_availability(ui.inputVolumeSelector.currentNode())

    def _show_dicom_availability(self, volume_node: Any) -> None:
        """DICOM export and SEG import are offered for a volume loaded with the DICOM module."""
        from_dicom = bool(instance_uids(volume_node))
        for widget in (self.ui.dicomExportCheckBox, self.ui.dicomFolderButton, self.ui.loadDicomSegButton):
            widget.enabled = from_dicom

    def _job_settings(self) -> Settings:
        return job_settings(self.settings(), bool(instance_uids(self.ui.inputVolumeSelector.currentNode())))

    # -- actions ---------------------------------------------------------------
    def _ready(self) -> bool:
        plan = plan_install(
            installed_versions([*PROTECTED, *(r.split("==")[0] for r in REQUIREMENTS)]),
            pytorch_utils_available=_pytorch_utils() is not None,
        )
        if not plan.needed:
            return True
        with slicer.util.tryWithErrorDisplay("Installing the Python packages failed.", waitCursor=True):
            return install_dependencies(
                plan,
                slicer.util.confirmOkCancelDisplay,
                slicer.util.pip_install,
                lambda: _pytorch_utils().installTorch(askConfirmation=False),
            )
        return False

    def on_segment(self) -> None:
        if self._ready():
            self.controller.segment(
                self.ui.inputVolumeSelector.currentNode(), self._job_settings(), self._show_segmentation
            )
            self.timer.start()

    def on_detect(self, gradcam: bool = False) -> None:
        if self._ready():
            self.controller.detect(
                self.ui.inputVolumeSelector.currentNode(), self._job_settings(), self._show_findings, gradcam
            )
            self.timer.start()

    def on_explain(self) -> None:
        target = self.ui.explainTargetComboBox.currentText
        if target in self.maps:
            self._show_map(self.maps[target])
        elif target == "all findings":
            self.on_detect(gradcam=True)
        elif self._ready():
            settings = self._job_settings()
            settings.gradcam_target = target
            self.controller.segment(
                self.ui.inputVolumeSelector.currentNode(), settings, self._show_segmentation
            )
            self.timer.start()

    def on_export(self) -> None:
        if self.segmentation_node is None:
            self.show_error("Segment first: there is no segmentation to export.")
            return
        self.controller.export(
            self.segmentation_node,
            self.ui.inputVolumeSelector.currentNode(),
            self.settings(),
            lambda folder: self.show_status(f"Surfaces written to {folder}."),
        )
        self.timer.start()

    def on_save_correction(self) -> None:
        """Store the (edited) segmentation and its CT as training data, with its changes vs the prediction."""
        if self.segmentation_node is None:
            self.show_error(
                "Segment first, then correct the segmentation in Segment Editor before saving it."
            )
            return
        try:
            case = save_correction(self.segmentation_node, self._reference_volume(self.segmentation_node))
        except MedSegAIError as error:
            self.show_error(str(error))
            return
        self.show_status(f"Correction saved for training: {case.folder}")

    def on_load_dicom_seg(self) -> None:
        """Load a DICOM SEG made on the input volume's DICOM series as a segmentation node."""
        volume_node = self.ui.inputVolumeSelector.currentNode()
        if volume_node is None:
            self.show_error("Select the CT volume the DICOM SEG was made on first.")
            return
        path = qt.QFileDialog.getOpenFileName(
            slicer.util.mainWindow(), "Load DICOM SEG", "", "DICOM SEG (*.dcm);;All files (*)"
        )
        if not path or not self._ready():
            return
        # highdicom is one of the packages installed at first use, so it is imported only now.
        from MedSegAILib.slicer.dicom_seg_import import import_dicom_seg_onto_volume

        qt.QApplication.setOverrideCursor(qt.Qt.WaitCursor)
        try:
            node = import_dicom_seg_onto_volume(path, volume_node, slicer_dicom_database_file)
        except MedSegAIError as error:
            node, message = None, str(error)
        finally:
            qt.QApplication.restoreOverrideCursor()
        if node is None:
            self.show_error(message)
            return
        self.segmentation_node = node
        self.show_status(
            f"Loaded {node.GetName()}: {node.GetSegmentation().GetNumberOfSegments()} segment(s)."
        )

    def _reference_volume(self, segmentation_node: Any) -> Any:
        """The volume a segmentation was made on (its reference geometry), else the input volume."""
        role = slicer.vtkMRMLSegmentationNode.GetReferenceImageGeometryReferenceRole()
        return segmentation_node.GetNodeReference(role) or self.ui.inputVolumeSelector.currentNode()

    def _poll(self) -> None:
        if not self.controller.poll():
            self.timer.stop()

    # -- results -----------------------------------------------------------------
    def _show_segmentation(self, outputs: SegmentOutputs) -> None:
        self.segmentation_node = outputs.segmentation
        remember_prediction(
            outputs.segmentation,
            self._reference_volume(outputs.segmentation),
            {"name": self.settings().model or DEFAULT_MODEL_TEXT},
        )
        self.maps.update(outputs.gradcam)
        self.entropy_node = outputs.entropy or self.entropy_node
        self.ui.flaggedList.clear()
        for name in outputs.flagged:
            self.ui.flaggedList.addItem(name)
        for node in outputs.gradcam.values():
            self._show_map(node)
        if outputs.entropy is not None and self.ui.showEntropyCheckBox.checked:
            self._show_map(outputs.entropy)

    def _show_findings(self, outputs: DetectOutputs) -> None:
        self.findings = outputs.findings
        table = self.ui.findingsTable
        table.setRowCount(len(outputs.findings))
        for row, finding in enumerate(outputs.findings):
            review = "" if finding.needs_review is None else ("yes" if finding.needs_review else "no")
            for column, text in enumerate(
                [
                    str(finding.id),
                    f"{finding.diameter_mm:.1f}",
                    f"{finding.volume_mm3:.0f}",
                    f"{finding.score:.2f}",
                    finding.lung_rads,
                    review,
                ]
            ):
                table.setItem(row, column, qt.QTableWidgetItem(text))
        if outputs.gradcam is not None:
            self.maps["all findings"] = outputs.gradcam
            self._show_map(outputs.gradcam)

    def on_finding_clicked(self, row: int, column: int) -> None:
        if 0 <= row < len(self.findings):
            slicer.modules.markups.logic().JumpSlicesToLocation(*self.findings[row].center_ras, True)

    def _show_map(self, node: Any) -> None:
        slicer.util.setSliceViewerLayers(
            background=self.ui.inputVolumeSelector.currentNode(),
            foreground=node,
            foregroundOpacity=self.ui.opacitySlider.value,
        )

    def on_opacity(self, value: float) -> None:
        slicer.util.setSliceViewerLayers(foregroundOpacity=value)

    def on_show_entropy(self, shown: bool) -> None:
        if self.entropy_node is not None:
            if shown:
                self._show_map(self.entropy_node)
            else:
                slicer.util.setSliceViewerLayers(foreground=None)

    # -- JobView -----------------------------------------------------------------
    def set_busy(self, busy: bool) -> None:
        for button in (
            self.ui.segmentButton,
            self.ui.detectButton,
            self.ui.explainButton,
            self.ui.exportButton,
        ):
            button.enabled = not busy
        from_dicom = bool(instance_uids(self.ui.inputVolumeSelector.currentNode()))
        self.ui.loadDicomSegButton.enabled = not busy and from_dicom
        self.ui.cancelButton.enabled = busy

    def show_progress(self, fraction: float, message: str) -> None:
        self.ui.progressBar.value = int(round(100 * fraction))
        self.ui.statusLabel.text = message

    def show_status(self, message: str) -> None:
        self.ui.statusLabel.text = message

    def show_error(self, message: str) -> None:
        self.ui.statusLabel.text = message
        slicer.util.errorDisplay(message)

    def cleanup(self) -> None:
        """Stop the timer and any running job (module closed or Slicer exiting)."""
        self.controller.cancel()
        self.controller.poll()
        self.timer.stop()


def _pytorch_utils() -> Any | None:
    """The PyTorch extension's logic, or ``None`` when the extension is not installed."""
    try:
        import PyTorchUtils  # provided by the SlicerPyTorch extension
    except ImportError:
        return None
    return PyTorchUtils.PyTorchUtilsLogic()
