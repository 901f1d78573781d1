"""`medsegai detect`: find lung nodules in a chest CT.

Runs the segmentation network once, then looks for nodules in the lungs it found: blob
candidates scored by the nodule classifier (docs/detection.md). Writes into OUTDIR:

  findings.json   findings sorted by score: centre and bounding box in LPS mm, longest axial
                  diameter (diameter_mm), long/short axis and their mean, volume (mm3),
                  Lung-RADS v2022 size category, score
  nodules.nii.gz  label map on the input grid, voxel value = finding id
  run.json        model, device, timings per stage, peak memory, library versions

The input is read and checked before any model is loaded.
"""

from __future__ import annotations

import argparse
import time

import torch

from ..detection.bundle_findings import detect_with_bundle
from ..detection.nodule_scorer import scorer_for_model
from ..detection.pipeline import segment_and_detect
from ..dicom_out.commands import add_dicom_out_argument, check_dicom_out, write_findings_dicom
from ..errors import InputError
from ..explain.commands import add_finding_gradcam_arguments, write_findings_gradcam
from ..explain.finding_gradcam import check_finding_layer
from ..explain.targets import findings_on_model_grid
from ..inference.device import select_device
from ..inference.run_record import build_run_record
from ..io import OutputDir, Volume, read_volume, write_label_map
from ..io.atomic import write_json
from ..models.bundle_detection import BundleDetector
from ..models.card import ModelCard
from ..models.loaded import LoadedModel
from ..models.registry import load_model, resolve_model
from ..progress import ProgressCallback, sub_progress
from ..uncertainty.commands import add_finding_uncertainty, check_model_supports, check_samples, finding_uncertainties
from .common import add_input_arguments, add_output_argument, add_run_arguments, progress_for
from .network_options import add_network_arguments, add_threshold_argument, check_network_arguments


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "detect", help="find lung nodules", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_input_arguments(parser)
    add_output_argument(parser)
    add_run_arguments(parser)
    add_network_arguments(parser)
    add_threshold_argument(parser)
    parser.add_argument(
        "--uncertainty", type=int, default=0, metavar="N",
        help="N Monte-Carlo dropout samples; adds an uncertainty to each finding (0 = off, the default)",
    )
    parser.add_argument("--gradcam", action="store_true",
                        help="write gradcam_nodules.nii.gz: the nodule classifier's Grad-CAM of every finding, one map")
    add_finding_gradcam_arguments(parser)
    add_dicom_out_argument(parser, "a DICOM SR of the findings (findings_sr.dcm) and a DICOM SEG of them (nodules_seg.dcm)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run `detect` as CONTRACT.md describes; returns the exit code."""
    started = time.perf_counter()
    progress = progress_for(args)
    timings: dict[str, float] = {}

    volume = read_volume(args.input, series_uid=args.series)
    timings["read"] = time.perf_counter() - started
    check_samples(args.uncertainty)
    check_network_arguments(args)
    if args.gradcam:
        check_finding_layer(args.gradcam_layer)
    card = resolve_model(args.model)
    check_dicom_out(args.dicom_out, volume)
    device = select_device(args.device)

    with OutputDir(args.output) as out:
        stage = time.perf_counter()
        progress(0.0, f"load: model {card.name} {card.version} on {device}")
        model = load_model(card, device)
        timings["load"] = time.perf_counter() - stage
        if isinstance(model.network, BundleDetector):
            return _detect_with_bundle(args, out, volume, card, model, device, progress, timings, started)
        if args.uncertainty:
            check_model_supports(model)
        detection_end = 0.8 if args.uncertainty or args.gradcam else 1.0
        scorer = scorer_for_model(model.card)
        segmentation, detection = segment_and_detect(
            volume, model, threshold=args.threshold, scorer=scorer, progress=sub_progress(progress, 0.0, detection_end),
            fast=args.fast, threads=args.threads, keep_features=bool(args.uncertainty),
        )
        timings.update(segmentation.timings)
        centers = [finding.to_json()["center"] for finding in detection.findings]
        explain_record = {}
        uncertainties = None
        if args.uncertainty:
            stage = time.perf_counter()
            masks = findings_on_model_grid(segmentation, detection.labels, centers)
            uncertainties = finding_uncertainties(segmentation, model, masks, args.uncertainty, args.threads,
                                                  sub_progress(progress, detection_end, 0.95 if args.gradcam else 1.0))
            timings["uncertainty"] = time.perf_counter() - stage
            explain_record["uncertainty_samples"] = args.uncertainty
        if args.gradcam:
            stage = time.perf_counter()
            progress(0.95 if args.uncertainty else detection_end, "gradcam: findings")
            explain_record["gradcam"] = write_findings_gradcam(out, segmentation, detection, scorer, volume,
                                                               args.gradcam_layer, args.gradcam_method)
            timings["gradcam"] = time.perf_counter() - stage

        stage = time.perf_counter()
        write_json(out.path("findings.json"), add_finding_uncertainty(detection.findings_json(), uncertainties))
        write_label_map(detection.labels, volume, out.path("nodules.nii.gz"))
        timings["write"] = time.perf_counter() - stage
        timings["total"] = time.perf_counter() - started
        record = build_run_record(
            "detect", card, str(device), timings, input_path=str(args.input),
            options={"threshold": args.threshold, "fast": args.fast, "threads": args.threads,
                     "windows": segmentation.windows, "score": detection.scorer,
                     "candidates": detection.candidates, "findings": len(detection.findings), **explain_record},
        )
        write_json(out.path("run.json"), record)
        if args.dicom_out:
            write_findings_dicom(args.dicom_out, detection.findings_json(), detection.labels, volume, card.name, card.version)
    if not getattr(args, "quiet", False):
        print(f"{len(detection.findings)} finding(s) at threshold {args.threshold}; written to {args.output}")
    return 0


def _detect_with_bundle(args: argparse.Namespace, out: OutputDir, volume: Volume, card: ModelCard, model: LoadedModel,
                        device: torch.device, progress: ProgressCallback, timings: dict[str, float], started: float) -> int:
    """`detect` with a MONAI RetinaNet detection bundle: boxes become measured findings."""
    if args.uncertainty or args.gradcam:
        raise InputError(f"--uncertainty/--gradcam: model {card.name!r} is a RetinaNet detection bundle without a "
                         "dropout head or decoder layers to explain; run without these options")
    detection = detect_with_bundle(volume, model.network, device, threshold=args.threshold, progress=progress, timings=timings)
    write_json(out.path("findings.json"), detection.findings_json())
    write_label_map(detection.labels, volume, out.path("nodules.nii.gz"))
    timings["total"] = time.perf_counter() - started
    record = build_run_record(
        "detect", card, str(device), timings, input_path=str(args.input),
        options={"threshold": args.threshold, "score": detection.scorer, "findings": len(detection.findings)},
    )
    write_json(out.path("run.json"), record)
    if args.dicom_out:
        write_findings_dicom(args.dicom_out, detection.findings_json(), detection.labels, volume, card.name, card.version)
    if not args.quiet:
        print(f"{len(detection.findings)} finding(s) at threshold {args.threshold}; written to {args.output}")
    return 0
