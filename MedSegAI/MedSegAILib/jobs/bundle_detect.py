"""The `detect` job with a MONAI RetinaNet detection bundle: its boxes become measured findings."""

from __future__ import annotations

from ..detection.bundle_findings import detect_with_bundle
from ..errors import InputError
from ..models.bundle_detection import BundleDetector
from .context import JobContext, JobOutcome, write_findings


def run_bundle_detect(job: JobContext) -> JobOutcome:
    """Run the bundle's detector, then write ``findings.json`` and ``nodules.nii.gz``.

    Raises:
        InputError: ``--uncertainty`` or ``--gradcam``, which a RetinaNet bundle cannot give.
    """
    request, model = job.request, job.model
    if request.uncertainty or request.findings_gradcam:
        raise InputError(
            f"--uncertainty/--gradcam: model {model.card.name!r} is a RetinaNet detection bundle without a "
            "dropout head or decoder layers to explain; run without these options"
        )
    assert isinstance(model.network, BundleDetector)
    detection = detect_with_bundle(
        job.volume,
        model.network,
        job.device,
        threshold=request.threshold,
        progress=job.progress,
        cancel=job.cancel,
        timings=job.clock.timings,
    )
    with job.clock.stage("write"):
        write_findings(job.out, job.volume, detection.findings_json(), detection)
    options = {"threshold": request.threshold, "score": detection.scorer, "findings": len(detection.findings)}
    return JobOutcome(options=options, detection=detection)
