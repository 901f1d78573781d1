"""The `segment` job: the label map, and with the request's options uncertainty, Grad-CAM,
findings from the same network pass, and meshes."""

from __future__ import annotations

from typing import Any

from ..detection.nodule_scorer import scorer_for_model
from ..detection.pipeline import segment_and_detect
from ..explain.commands import write_findings_gradcam, write_segment_gradcams
from ..inference.engine import segment_volume
from ..io import write_label_map
from ..io.atomic import write_json
from ..mesh import MeshOptions, export_meshes_with_report
from ..progress import check_cancelled
from ..uncertainty.commands import check_model_supports, write_segment_uncertainty
from .context import JobContext, JobOutcome, progress_ranges, write_findings


def run_segment(job: JobContext) -> JobOutcome:
    """Segment, then write in this order: the uncertainty maps, the Grad-CAM maps,
    ``segmentation.nii.gz``, ``labels.json``, the findings, and ``meshes/``.

    Raises:
        InputError: ``--uncertainty`` with a model that has no dropout head.
    """
    request, model, volume, out, clock = job.request, job.model, job.volume, job.out, job.clock
    card = model.card
    if request.uncertainty:
        check_model_supports(model)
    findings_gradcam = request.detect and request.findings_gradcam
    gradcam = bool(request.segment_gradcams) or findings_gradcam
    extras = [
        name
        for name, wanted in (
            ("uncertainty", request.uncertainty),
            ("gradcam", gradcam),
            ("mesh", request.stl),
        )
        if wanted
    ]
    spans = progress_ranges(extras)
    segment_options: dict[str, Any] = dict(
        fast=request.fast,
        progress=job.stage_progress(spans["network"]),
        cancel=job.cancel,
        threads=request.threads,
        keep_features=bool(request.uncertainty or request.segment_gradcams),
    )
    detection = scorer = None
    if request.detect:
        scorer = scorer_for_model(card)
        result, detection = segment_and_detect(
            volume, model, threshold=request.threshold, scorer=scorer, **segment_options
        )
    else:
        result = segment_volume(volume, model, **segment_options)
    clock.timings.update(result.timings)
    record: dict[str, Any] = {}
    if request.uncertainty:
        with clock.stage("uncertainty"):
            write_segment_uncertainty(
                out,
                result,
                model,
                volume,
                request.uncertainty,
                request.threads,
                job.stage_progress(spans["uncertainty"]),
            )
        record["uncertainty_samples"] = request.uncertainty
        check_cancelled(job.cancel)
    if gradcam:
        with clock.stage("gradcam"):
            job.progress(
                spans["gradcam"][0], "gradcam: " + (", ".join(request.segment_gradcams) or "findings")
            )
            if request.segment_gradcams:
                record["gradcam"] = write_segment_gradcams(
                    out,
                    result,
                    model,
                    volume,
                    request.segment_gradcams,
                    request.gradcam_layer,
                    request.fast,
                    request.threads,
                )
            if detection is not None and findings_gradcam:
                record["gradcam_findings"] = write_findings_gradcam(
                    out,
                    result,
                    detection,
                    scorer,
                    volume,
                    request.findings_gradcam_layer,
                    request.findings_gradcam_method,
                )
        check_cancelled(job.cancel)
    with clock.stage("write"):
        write_label_map(result.labels.array, volume, out.path("segmentation.nii.gz"))
        write_json(out.path("labels.json"), {"labels": [label.to_json() for label in card.labels]})
        if detection is not None:
            write_findings(out, volume, detection.findings_json(), detection)
            record.update(
                threshold=request.threshold, findings=len(detection.findings), score=detection.scorer
            )
    if request.stl:
        with clock.stage("mesh"):
            names = {label.value: (label.name, label.color) for label in card.labels}
            export_meshes_with_report(
                result.labels.array,
                volume,
                names,
                out.path("meshes"),
                MeshOptions(),
                progress=job.stage_progress(spans["mesh"]),
                cancel=job.cancel,
            )
    options = {"fast": request.fast, "threads": request.threads, "windows": result.windows, **record}
    return JobOutcome(options=options, labels=result.labels.array, detection=detection)
