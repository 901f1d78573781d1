"""Run one job: read and check the input, load the model, run the job, write ``run.json``.

The input is read and every option checked before any model is loaded. The outputs go
through an :class:`~MedSegAILib.io.output_dir.OutputDir`, so a job that fails or is
cancelled leaves nothing behind (and no output folder if it created it); ``run.json`` is
written last, then the DICOM objects of ``dicom_out``.
"""

from __future__ import annotations

from collections.abc import Callable

from ..dicom_out.commands import check_dicom_out, write_findings_dicom, write_segmentation_dicom
from ..inference.device import select_device
from ..inference.run_record import build_run_record
from ..io import OutputDir, read_volume
from ..io.atomic import write_json
from ..models.bundle_detection import BundleDetector
from ..models.card import ModelCard
from ..models.loaded import LoadedModel
from ..models.registry import load_model, resolve_model
from ..progress import CancelToken, ProgressCallback, check_cancelled, no_progress
from .bundle_detect import run_bundle_detect
from .context import JobContext, JobOutcome, StageClock
from .detect import run_detect
from .request import JobRequest, JobResult, check_request
from .segment import run_segment

Job = Callable[[JobContext], JobOutcome]


def run_job(
    request: JobRequest, progress: ProgressCallback = no_progress, cancel: CancelToken | None = None
) -> JobResult:
    """Run ``request`` into its output folder, as CONTRACT.md describes its command.

    Args:
        request: the command and its options.
        progress: ``(fraction, message)`` callback; it ends at 1.0 when the outputs are in place.
        cancel: checked between stages and inside the long ones.

    Returns:
        The names written, the ``run.json`` record and the number of findings.

    Raises:
        InputError: bad input or options (nothing is written).
        Cancelled: ``cancel`` was set (nothing is left behind).
    """
    clock = StageClock()
    with clock.stage("read"):
        volume = read_volume(request.input, series_uid=request.series)
    check_request(request)
    card = resolve_model(request.model)
    for segment in request.segment_gradcams:
        card.label(segment)
    check_dicom_out(request.dicom_out, volume)
    device = select_device(request.device)
    check_cancelled(cancel)

    with OutputDir(request.output) as out:
        progress(0.0, f"load: model {card.name} {card.version} on {device}")
        with clock.stage("load"):
            model = load_model(card, device)
        check_cancelled(cancel)
        job = JobContext(request, volume, model, device, out, clock, progress, cancel)
        outcome = job_for(request, model)(job)
        record = build_run_record(
            request.command,
            card,
            str(device),
            clock.finish(),
            input_path=str(request.input),
            options=outcome.options,
        )
        write_json(out.path("run.json"), record)
        if request.dicom_out:
            _write_dicom(request, outcome, job, card)
        check_cancelled(cancel)
    progress(1.0, "done")
    findings = len(outcome.detection.findings) if outcome.detection is not None else None
    return JobResult(output=out.final, files=tuple(out.names), record=record, findings=findings)


def job_for(request: JobRequest, model: LoadedModel) -> Job:
    """The job that runs ``request`` with ``model``: segment, detect, or detect with a RetinaNet bundle."""
    if request.command == "segment":
        return run_segment
    return run_bundle_detect if isinstance(model.network, BundleDetector) else run_detect


def _write_dicom(request: JobRequest, outcome: JobOutcome, job: JobContext, card: ModelCard) -> None:
    """`segment`: the label map as a DICOM SEG; `detect`: the findings as a SEG and an SR."""
    assert request.dicom_out is not None
    if request.command == "segment":
        assert outcome.labels is not None
        labels = [label.to_json() for label in card.labels]
        write_segmentation_dicom(
            request.dicom_out, outcome.labels, job.volume, labels, card.name, card.version
        )
    else:
        assert outcome.detection is not None
        detection = outcome.detection
        write_findings_dicom(
            request.dicom_out,
            detection.findings_json(),
            detection.labels,
            job.volume,
            card.name,
            card.version,
        )
