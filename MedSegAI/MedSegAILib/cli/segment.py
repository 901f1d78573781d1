"""`medsegai segment`: segment a CT volume (left/right lung, lung nodule, airway).

Writes segmentation.nii.gz (labels on exactly the input grid), labels.json and run.json
into OUTDIR; with --stl a closed surface per segment in meshes/; with --detect also the
nodule findings (findings.json, nodules.nii.gz, as `detect` writes them) from the same
network pass, and with --detect and --gradcam the findings' map (gradcam_nodules.nii.gz, as
`detect --gradcam` writes it). The input is read and checked before any model is loaded.
"""

from __future__ import annotations

import argparse
import time

from ..dicom_out.commands import add_dicom_out_argument, check_dicom_out, write_segmentation_dicom
from ..detection.nodule_scorer import scorer_for_model
from ..detection.pipeline import segment_and_detect
from ..explain.commands import add_gradcam_layer_argument, write_findings_gradcam, write_segment_gradcams
from ..inference.device import select_device
from ..inference.engine import segment_volume
from ..inference.run_record import build_run_record
from ..io import OutputDir, read_volume, write_label_map
from ..io.atomic import write_json
from ..mesh import MeshOptions, export_meshes_with_report
from ..models.registry import load_model, resolve_model
from ..progress import sub_progress
from ..uncertainty.commands import check_model_supports, check_samples, write_segment_uncertainty
from .common import add_input_arguments, add_output_argument, add_run_arguments, progress_for
from .network_options import add_network_arguments, add_threshold_argument, check_network_arguments


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("segment", help="segment a CT volume (lungs, nodules)", description=__doc__)
    add_input_arguments(parser)
    add_output_argument(parser)
    add_run_arguments(parser)
    add_network_arguments(parser)
    add_threshold_argument(parser, "with --detect: ")
    parser.add_argument(
        "--uncertainty", type=int, default=0, metavar="N",
        help="N Monte-Carlo dropout samples; writes uncertainty maps (0 = off, the default)",
    )
    parser.add_argument(
        "--gradcam", action="append", default=[], metavar="SEGMENT",
        help="write a Grad-CAM map for this segment (name or label value); may be repeated",
    )
    add_gradcam_layer_argument(parser)
    parser.add_argument("--stl", action="store_true", help="also export a surface mesh per segment into meshes/ (as export-stl, default options)")
    parser.add_argument(
        "--detect", action="store_true",
        help="also find nodules from the same network pass: findings.json and nodules.nii.gz, as `detect` writes them",
    )
    add_dicom_out_argument(parser, "the segmentation as a DICOM SEG (segmentation_seg.dcm)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run `segment` as CONTRACT.md describes; returns the exit code."""
    started = time.perf_counter()
    progress = progress_for(args)
    timings: dict[str, float] = {}

    volume = read_volume(args.input, series_uid=args.series)
    timings["read"] = time.perf_counter() - started
    check_samples(args.uncertainty)
    check_network_arguments(args)
    card = resolve_model(args.model)
    for segment in args.gradcam:
        card.label(segment)
    check_dicom_out(args.dicom_out, volume)
    device = select_device(args.device)

    with OutputDir(args.output) as out:
        stage = time.perf_counter()
        progress(0.0, f"load: model {card.name} {card.version} on {device}")
        model = load_model(card, device)
        timings["load"] = time.perf_counter() - stage
        if args.uncertainty:
            check_model_supports(model)
        segmentation_end = 0.8 if args.uncertainty or args.gradcam else 1.0
        segment_options = dict(fast=args.fast, progress=sub_progress(progress, 0.0, segmentation_end),
                               threads=args.threads, keep_features=bool(args.uncertainty or args.gradcam))
        detection = scorer = None
        if args.detect:
            scorer = scorer_for_model(model.card)
            result, detection = segment_and_detect(volume, model, threshold=args.threshold, scorer=scorer, **segment_options)
        else:
            result = segment_volume(volume, model, **segment_options)
        timings.update(result.timings)
        explain_record = {}
        if args.uncertainty:
            stage = time.perf_counter()
            write_segment_uncertainty(out, result, model, volume, args.uncertainty, args.threads,
                                      sub_progress(progress, segmentation_end, 0.95 if args.gradcam else 1.0))
            timings["uncertainty"] = time.perf_counter() - stage
            explain_record["uncertainty_samples"] = args.uncertainty
        if args.gradcam:
            stage = time.perf_counter()
            progress(0.95 if args.uncertainty else segmentation_end, "gradcam: " + ", ".join(args.gradcam))
            explain_record["gradcam"] = write_segment_gradcams(out, result, model, volume, args.gradcam, args.gradcam_layer,
                                                               args.fast, args.threads)
            if detection is not None:  # the findings' map too, as `detect --gradcam` writes it (default layer and method)
                explain_record["gradcam_findings"] = write_findings_gradcam(out, result, detection, scorer, volume)
            timings["gradcam"] = time.perf_counter() - stage

        stage = time.perf_counter()
        write_label_map(result.labels.array, volume, out.path("segmentation.nii.gz"))
        write_json(out.path("labels.json"), {"labels": [label.to_json() for label in card.labels]})
        if detection is not None:
            write_json(out.path("findings.json"), detection.findings_json())
            write_label_map(detection.labels, volume, out.path("nodules.nii.gz"))
            explain_record.update(threshold=args.threshold, findings=len(detection.findings), score=detection.scorer)
        timings["write"] = time.perf_counter() - stage
        if args.stl:
            stage = time.perf_counter()
            names = {label.value: (label.name, label.color) for label in card.labels}
            export_meshes_with_report(result.labels.array, volume, names, out.path("meshes"), MeshOptions(), progress=progress)
            timings["mesh"] = time.perf_counter() - stage
        timings["total"] = time.perf_counter() - started
        record = build_run_record(
            "segment", card, str(device), timings, input_path=str(args.input),
            options={"fast": args.fast, "threads": args.threads, "windows": result.windows, **explain_record},
        )
        write_json(out.path("run.json"), record)
        if args.dicom_out:
            labels = [label.to_json() for label in card.labels]
            write_segmentation_dicom(args.dicom_out, result.labels.array, volume, labels, card.name, card.version)
    return 0

