"""The `segment` job: the label map with the lesions in it, and with the request's options
uncertainty, Grad-CAM and meshes.

With a model that segments the lungs and has a ``lung nodule`` segment, the findings of the
same network pass are that segment (:mod:`.lesions`); ``findings.json``, ``nodules.nii.gz``
and ``volumes.json`` are written beside the segmentation.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ..detection.lesion_segment import LESION_SEGMENT
from ..detection.nodule_scorer import scorer_for_model
from ..detection.pipeline import segment_and_detect
from ..explain.commands import gradcam_file_name, write_findings_gradcam, write_segment_gradcams
from ..explain.gradcam import check_layer
from ..inference.engine import segment_volume
from ..io import write_label_map
from ..io.atomic import write_json
from ..progress import check_cancelled
from ..uncertainty.commands import add_finding_uncertainty, check_model_supports, write_segment_uncertainty
from .context import JobContext, JobOutcome, progress_ranges
from .lesions import export_meshes, finds_lesions, put_lesions_in_segmentation, volumes_json


def run_segment(job: JobContext) -> JobOutcome:
    """Segment (and detect), then write in this order: the uncertainty maps, the Grad-CAM maps,
    ``segmentation.nii.gz``, ``labels.json``, ``volumes.json``, the findings, and ``meshes/``.

    Raises:
        InputError: ``--uncertainty`` with a model that has no dropout head; ``--detect`` with a
            model that segments no lungs; a ``--gradcam-layer`` the network does not have.
    """
    request, model, volume, out, clock = job.request, job.model, job.volume, job.out, job.clock
    card = model.card
    if request.uncertainty:
        check_model_supports(model)
    if request.segment_gradcams:
        check_layer(model.network, request.gradcam_layer)
    detect = finds_lesions(request.detect, card)
    segment_gradcams = list(dict.fromkeys(card.label(name).name for name in request.segment_gradcams))
    lesion_gradcam = detect and LESION_SEGMENT in [name.lower() for name in segment_gradcams]
    if lesion_gradcam:  # the lesions are the findings: their map is the classifier's
        segment_gradcams = [name for name in segment_gradcams if name.lower() != LESION_SEGMENT]
    findings_gradcam = detect and request.findings_gradcam
    gradcam = bool(segment_gradcams) or findings_gradcam or lesion_gradcam
    wanted = (("uncertainty", request.uncertainty), ("gradcam", gradcam), ("mesh", request.stl))
    spans = progress_ranges([name for name, asked in wanted if asked])
    segment_options: dict[str, Any] = dict(
        fast=request.fast,
        progress=job.stage_progress(spans["network"]),
        cancel=job.cancel,
        threads=request.threads,
        keep_features=bool(request.uncertainty or segment_gradcams),
    )
    detection = scorer = lesions = None
    if detect:
        scorer = scorer_for_model(card)
        result, detection = segment_and_detect(
            volume, model, threshold=request.threshold, scorer=scorer, **segment_options
        )
        lesions = put_lesions_in_segmentation(result.labels.array, detection, card)
    else:
        result = segment_volume(volume, model, **segment_options)
    clock.timings.update(result.timings)
    labels = result.labels.array
    record: dict[str, Any] = {}
    lesion_uncertainty = None
    if request.uncertainty:
        with clock.stage("uncertainty"):
            lesion_uncertainty = write_segment_uncertainty(
                out,
                result,
                model,
                volume,
                request.uncertainty,
                request.threads,
                job.stage_progress(spans["uncertainty"]),
                detection=detection,
            )
        record["uncertainty_samples"] = request.uncertainty
        check_cancelled(job.cancel)
    if gradcam:
        with clock.stage("gradcam"):
            job.progress(
                spans["gradcam"][0], "gradcam: " + (", ".join(request.segment_gradcams) or "findings")
            )
            if segment_gradcams:
                record["gradcam"] = write_segment_gradcams(
                    out,
                    result,
                    model,
                    volume,
                    segment_gradcams,
                    request.gradcam_layer,
                    request.fast,
                    request.threads,
                )
            if detection is not None and (findings_gradcam or lesion_gradcam):
                names = [gradcam_file_name(LESION_SEGMENT)] if lesion_gradcam else []
                names += ["gradcam_nodules.nii.gz"] if findings_gradcam else []
                record["gradcam_findings"] = write_findings_gradcam(
                    out,
                    result,
                    detection,
                    scorer,
                    volume,
                    request.findings_gradcam_layer,
                    request.findings_gradcam_method,
                    names=names,
                )
        check_cancelled(job.cancel)
    with clock.stage("write"), ThreadPoolExecutor(2) as pool:  # SimpleITK compresses without the GIL
        maps = [pool.submit(write_label_map, labels, volume, out.path("segmentation.nii.gz"))]
        write_json(out.path("labels.json"), {"labels": [label.to_json() for label in card.labels]})
        write_json(out.path("volumes.json"), volumes_json(labels, volume, card, lesions))
        if detection is not None:
            findings = add_finding_uncertainty(detection.findings_json(), lesion_uncertainty)
            write_json(out.path("findings.json"), findings)
            maps.append(pool.submit(write_label_map, detection.labels, volume, out.path("nodules.nii.gz")))
            record.update(
                threshold=request.threshold, findings=len(detection.findings), score=detection.scorer
            )
        for written in maps:
            written.result()
    if request.stl:
        with clock.stage("mesh"):
            export_meshes(
                labels,
                volume,
                card,
                lesions,
                out.path("meshes"),
                job.stage_progress(spans["mesh"]),
                job.cancel,
            )
    options = {"fast": request.fast, "threads": request.threads, "windows": result.windows, **record}
    return JobOutcome(options=options, labels=labels, detection=detection)
