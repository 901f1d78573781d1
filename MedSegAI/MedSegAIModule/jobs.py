"""Segment, detect and export jobs: engine input -> out-of-process run -> MRML nodes.

:class:`JobController` holds no Qt: the widget calls :meth:`JobController.poll` from a
timer and implements :class:`JobView`. Each job works in its own temporary folder, removed
when the job ends (success, failure or cancel).

The engine's input is the volume written as NRRD, or, with DICOM export on, the DICOM
series the volume was loaded from (so the DICOM SEG / SR written by ``--dicom-out``
reference the original series).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from MedSegAILib.errors import InputError, MedSegAIError
from MedSegAILib.slicer.dicom_source import FileLookup
from MedSegAILib.slicer.engine_input import write_dicom_engine_input, write_engine_input
from MedSegAILib.slicer.outputs import (
    DetectOutputs,
    SegmentOutputs,
    load_detect_outputs,
    load_segment_outputs,
)
from MedSegAILib.slicer.segmentation_nodes import write_segmentation_label_map

from .engine_command import detect_command, engine_environment, engine_python, export_command, segment_command
from .parameters import Settings
from .process_runner import CANCELLED, SUCCEEDED, JobRunner


class JobView(Protocol):
    """What the controller tells the panel."""

    def set_busy(self, busy: bool) -> None: ...

    def show_progress(self, fraction: float, message: str) -> None: ...

    def show_status(self, message: str) -> None: ...

    def show_error(self, message: str) -> None: ...


@dataclass
class _Job:
    name: str
    workdir: Path
    finish: Callable[[], None]
    done_message: str = ""


EngineCommand = Callable[[Path, Path, Path | None], list[str]]
"""(input, output folder, DICOM output folder or None) -> argv."""


def _no_dicom_database(uid: str) -> str:
    return ""


def engine_input_for(
    volume_node: Any, settings: Settings, workdir: Path, file_for_instance: FileLookup
) -> tuple[Path, Path | None]:
    """Write the engine's input for a segment/detect job into ``workdir``.

    Args:
        volume_node: the input volume.
        settings: the job's settings; ``dicom_export`` selects the DICOM path.
        workdir: the job's folder.
        file_for_instance: the DICOM database's lookup (SOP Instance UID -> file).

    Returns:
        ``(INPUT, --dicom-out folder)``: the volume as NRRD and ``None``, or with DICOM export
        the volume's own DICOM series (a folder) and ``settings.dicom_folder``.

    Raises:
        InputError: no DICOM folder chosen, or the volume cannot be given to the engine
            (see :func:`write_engine_input`, :func:`write_dicom_engine_input`).
    """
    if not settings.dicom_export:
        return write_engine_input(volume_node, workdir / "input.nrrd"), None
    if not settings.dicom_folder:
        raise InputError("Choose a folder for the DICOM SEG / SR first.")
    return write_dicom_engine_input(volume_node, file_for_instance, workdir / "dicom"), Path(
        settings.dicom_folder
    )


class JobController:
    """Runs one engine job at a time and turns its outputs into nodes.

    Args:
        runner: starts and watches the engine process.
        view: the panel.
        python: the engine's interpreter (default: :func:`engine_python`).
        env: the engine's environment (default: :func:`engine_environment`).
        file_for_instance: the DICOM database's lookup (SOP Instance UID -> file), needed for
            DICOM export; the default knows no instance.
    """

    def __init__(
        self,
        runner: JobRunner,
        view: JobView,
        python: str | None = None,
        env: Mapping[str, str] | None = None,
        file_for_instance: FileLookup = _no_dicom_database,
    ) -> None:
        self._runner = runner
        self._view = view
        self._python = python or engine_python()
        self._env = dict(env) if env is not None else engine_environment()
        self._file_for_instance = file_for_instance
        self._job: _Job | None = None

    @property
    def running(self) -> bool:
        return self._job is not None

    def segment(self, volume_node: Any, settings: Settings, loaded: Callable[[SegmentOutputs], None]) -> None:
        """Start ``medsegai segment`` on ``volume_node``; ``loaded`` gets the new nodes.

        With ``settings.dicom_export`` the engine reads the volume's DICOM series and also
        writes a DICOM SEG into ``settings.dicom_folder``.
        """

        def finish(workdir: Path) -> None:
            loaded(load_segment_outputs(workdir / "out", volume_node, volume_node.GetName()))

        def command(input_path: Path, outdir: Path, dicom_out: Path | None) -> list[str]:
            return segment_command(self._python, input_path, outdir, settings, dicom_out)

        self._start("Segmentation", volume_node, settings, command, finish)

    def detect(
        self,
        volume_node: Any,
        settings: Settings,
        loaded: Callable[[DetectOutputs], None],
        gradcam: bool = False,
    ) -> None:
        """Start ``medsegai detect`` on ``volume_node``; ``loaded`` gets the new nodes.

        With ``settings.dicom_export`` the engine also writes the findings' DICOM SEG and SR.
        """

        def finish(workdir: Path) -> None:
            loaded(load_detect_outputs(workdir / "out", volume_node, volume_node.GetName()))

        def command(input_path: Path, outdir: Path, dicom_out: Path | None) -> list[str]:
            return detect_command(self._python, input_path, outdir, settings, gradcam, dicom_out)

        self._start("Detection", volume_node, settings, command, finish)

    def export(
        self, segmentation_node: Any, volume_node: Any, settings: Settings, done: Callable[[Path], None]
    ) -> None:
        """Export the (possibly edited) segmentation as surfaces with ``medsegai export-stl``."""
        if not settings.export_folder:
            self._view.show_error("Choose an export folder first.")
            return
        workdir = self._new_workdir()
        try:
            label_path, labels_path = workdir / "segmentation.nii.gz", workdir / "labels.json"
            write_segmentation_label_map(segmentation_node, volume_node, label_path, labels_path)
        except MedSegAIError as error:
            self._fail(workdir, str(error))
            return
        folder = Path(settings.export_folder)
        self._launch(
            _Job("Export", workdir, lambda: done(folder)),
            export_command(self._python, label_path, labels_path, settings),
        )

    def poll(self) -> bool:
        """Forward progress; when the job has ended, load its outputs. True while running."""
        if self._job is None:
            return False
        for progress in self._runner.poll():
            self._view.show_progress(progress.fraction, progress.message)
        result = self._runner.result
        if result is None:
            return True
        job, self._job = self._job, None
        try:
            if result.status == SUCCEEDED:
                job.finish()
                self._view.show_progress(1.0, f"{job.name} done")
                self._view.show_status(job.done_message or f"{job.name} done.")
            elif result.status == CANCELLED:
                self._view.show_status(f"{job.name} cancelled.")
            else:
                self._view.show_error(result.message)
        except MedSegAIError as error:
            self._view.show_error(str(error))
        finally:
            shutil.rmtree(job.workdir, ignore_errors=True)
            self._view.set_busy(False)
        return False

    def cancel(self) -> None:
        """Stop the running job (its folder is removed by the next :meth:`poll`)."""
        if self._job is not None:
            self._runner.cancel()

    def _start(
        self,
        name: str,
        volume_node: Any,
        settings: Settings,
        command: EngineCommand,
        finish: Callable[[Path], None],
    ) -> None:
        if volume_node is None:
            self._view.show_error("Select an input volume first.")
            return
        workdir = self._new_workdir()
        try:
            input_path, dicom_out = engine_input_for(volume_node, settings, workdir, self._file_for_instance)
        except MedSegAIError as error:
            self._fail(workdir, str(error))
            return
        done = f"{name} done; DICOM written to {dicom_out}." if dicom_out is not None else ""
        self._launch(
            _Job(name, workdir, lambda: finish(workdir), done),
            command(input_path, workdir / "out", dicom_out),
        )

    def _new_workdir(self) -> Path:
        if self._job is not None:
            raise RuntimeError("a job is already running")
        return Path(tempfile.mkdtemp(prefix="medsegai-"))

    def _launch(self, job: _Job, argv: list[str]) -> None:
        self._job = job
        self._view.set_busy(True)
        self._view.show_progress(0.0, f"{job.name}: starting")
        try:
            self._runner.start(argv, self._env)
        except OSError as error:
            self._job = None
            self._view.set_busy(False)
            self._fail(job.workdir, f"Cannot start the engine ({argv[0]}): {error}")

    def _fail(self, workdir: Path, message: str) -> None:
        shutil.rmtree(workdir, ignore_errors=True)
        self._view.show_error(message)
