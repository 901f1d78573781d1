"""The `detect` job with a segmentation model: one network pass, then the nodule detector
in the lungs it found; with the request's options each finding's uncertainty and the
findings' Grad-CAM map."""

from __future__ import annotations

from ..detection.nodule_scorer import scorer_for_model
from ..detection.pipeline import segment_and_detect
from ..explain.commands import write_findings_gradcam
from ..explain.targets import findings_on_model_grid
from ..progress import check_cancelled
from ..uncertainty.commands import add_finding_uncertainty, check_model_supports, finding_uncertainties
from .context import JobContext, JobOutcome, progress_ranges, write_findings


def run_detect(job: JobContext) -> JobOutcome:
    """Detect, then write in this order: ``gradcam_nodules.nii.gz``, ``findings.json``
    (with each finding's uncertainty when sampled) and ``nodules.nii.gz``.

    Raises:
        InputError: ``--uncertainty`` with a model that has no dropout head, or a model
            without a lung class.
    """
    request, model, volume, out, clock = job.request, job.model, job.volume, job.out, job.clock
    if request.uncertainty:
        check_model_supports(model)
    extras = [
        name
        for name, wanted in (("uncertainty", request.uncertainty), ("gradcam", request.findings_gradcam))
        if wanted
    ]
    spans = progress_ranges(extras)
    scorer = scorer_for_model(model.card)
    segmentation, detection = segment_and_detect(
        volume,
        model,
        threshold=request.threshold,
        scorer=scorer,
        progress=job.stage_progress(spans["network"]),
        cancel=job.cancel,
        fast=request.fast,
        threads=request.threads,
        keep_features=bool(request.uncertainty),
    )
    clock.timings.update(segmentation.timings)
    record = {}
    uncertainties = None
    if request.uncertainty:
        with clock.stage("uncertainty"):
            centers = [finding.to_json()["center"] for finding in detection.findings]
            masks = findings_on_model_grid(segmentation, detection.labels, centers)
            uncertainties = finding_uncertainties(
                segmentation,
                model,
                masks,
                request.uncertainty,
                request.threads,
                job.stage_progress(spans["uncertainty"]),
            )
        record["uncertainty_samples"] = request.uncertainty
        check_cancelled(job.cancel)
    if request.findings_gradcam:
        with clock.stage("gradcam"):
            job.progress(spans["gradcam"][0], "gradcam: findings")
            record["gradcam"] = write_findings_gradcam(
                out,
                segmentation,
                detection,
                scorer,
                volume,
                request.findings_gradcam_layer,
                request.findings_gradcam_method,
            )
        check_cancelled(job.cancel)
    with clock.stage("write"):
        write_findings(
            out, volume, add_finding_uncertainty(detection.findings_json(), uncertainties), detection
        )
    options = {
        "threshold": request.threshold,
        "fast": request.fast,
        "threads": request.threads,
        "windows": segmentation.windows,
        "score": detection.scorer,
        "candidates": detection.candidates,
        "findings": len(detection.findings),
        **record,
    }
    return JobOutcome(options=options, detection=detection)
