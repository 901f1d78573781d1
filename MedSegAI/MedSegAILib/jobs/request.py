"""What a job is asked to do (:class:`JobRequest`) and what it did (:class:`JobResult`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ..detection.detector import DEFAULT_THRESHOLD
from ..errors import InputError
from ..explain.finding_gradcam import DEFAULT_FINDING_LAYER, DEFAULT_FINDING_METHOD, check_finding_layer
from ..explain.gradcam import DEFAULT_LAYER
from ..inference.device import DEFAULT_CPU_THREADS
from ..uncertainty.commands import check_samples

Command = Literal["segment", "detect"]


@dataclass(frozen=True)
class JobRequest:
    """One `segment` or `detect` job, with the options CONTRACT.md gives those commands.

    Attributes:
        command: ``"segment"`` (writes the segmentation) or ``"detect"`` (writes findings).
        input: the CT: a volume file, a DICOM folder or one file of a series.
        output: the output folder (created if missing).
        series: the SeriesInstanceUID to read when ``input`` holds several series.
        model: a model name or folder; ``None`` is the built-in chest CT model.
        device: ``auto``, ``cpu``, ``cuda[:N]`` or ``mps``.
        fast: run at the model's coarser fast spacing.
        threads: CPU threads for the network.
        threshold: the score at or above which a finding is reported.
        uncertainty: Monte-Carlo dropout samples (0 = off).
        segment_gradcams: segments (names or label values) to write a Grad-CAM map for (`segment`).
        gradcam_layer: the segmentation network layer those maps explain.
        findings_gradcam: write ``gradcam_nodules.nii.gz``, the nodule classifier's map of the
            findings (`detect`, and `segment` with ``detect``).
        findings_gradcam_layer: the classifier layer that map explains.
        findings_gradcam_method: how that map weights the layer's activations.
        detect: `segment` also finds nodules from the same network pass and makes them its
            ``lung nodule`` segment; ``None`` (the default): when the model segments the lungs and
            has a ``lung nodule`` segment (the built-in chest CT model).
        stl: `segment` also exports one surface mesh per segment into ``meshes/``.
        dicom_out: a folder for the DICOM SEG (`segment`) or SEG and SR (`detect`).
    """

    command: Command
    input: str
    output: str
    series: str | None = None
    model: str | None = None
    device: str = "auto"
    fast: bool = False
    threads: int = DEFAULT_CPU_THREADS
    threshold: float = DEFAULT_THRESHOLD
    uncertainty: int = 0
    segment_gradcams: tuple[str, ...] = ()
    gradcam_layer: str = DEFAULT_LAYER
    findings_gradcam: bool = False
    findings_gradcam_layer: str = DEFAULT_FINDING_LAYER
    findings_gradcam_method: str = DEFAULT_FINDING_METHOD
    detect: bool | None = None
    stl: bool = False
    dicom_out: str | None = None


@dataclass(frozen=True)
class JobResult:
    """What a finished job wrote.

    Attributes:
        output: the output folder.
        files: the names written into it, in the order they were written (``meshes`` is a folder).
        record: the ``run.json`` contents.
        findings: how many findings were reported (``None`` when the job looked for none).
    """

    output: Path
    files: tuple[str, ...]
    record: dict[str, Any]
    findings: int | None


def check_request(request: JobRequest) -> None:
    """Refuse options that no model could run, before any model is resolved.

    Raises:
        InputError: a sample count, threshold, thread count or finding Grad-CAM layer
            that is not allowed, with the option and what is allowed.
    """
    check_samples(request.uncertainty)
    if not 0.0 <= request.threshold <= 1.0:
        raise InputError(f"--threshold {request.threshold}: must be a score between 0 and 1")
    if request.threads < 1:
        raise InputError(f"--threads {request.threads}: must be at least 1")
    if request.findings_gradcam:
        check_finding_layer(request.findings_gradcam_layer)
