"""`medsegai segment`: segment a CT volume (left/right lung, lung nodule, airway).

Writes segmentation.nii.gz (labels on exactly the input grid), labels.json, volumes.json and
run.json into OUTDIR. With a model that segments the lungs and has a `lung nodule` segment
(the built-in chest CT model) the nodules and masses found from the same network pass are that
segment, taken out of the lungs, and their findings are written beside it (findings.json,
nodules.nii.gz, as `detect` writes them; --threshold sets which are reported, --no-detect turns
this off). With --stl a closed surface per segment in meshes/, plus each lung with its lesions;
--gradcam "lung nodule" maps where the nodule classifier looked at the findings; --detect with
--gradcam also writes that map as gradcam_nodules.nii.gz (as `detect --gradcam`). The input is
read and checked before any model is loaded.
"""

from __future__ import annotations

import argparse

from ..dicom_out.commands import add_dicom_out_argument
from ..explain.commands import add_gradcam_layer_argument
from ..jobs import JobRequest, run_job
from .common import add_input_arguments, add_output_argument, add_run_arguments, progress_for
from .network_options import add_network_arguments, add_threshold_argument


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "segment", help="segment a CT volume (lungs, nodules)", description=__doc__
    )
    add_input_arguments(parser)
    add_output_argument(parser)
    add_run_arguments(parser)
    add_network_arguments(parser)
    add_threshold_argument(parser, "lesions: ")
    parser.add_argument(
        "--uncertainty",
        type=int,
        default=0,
        metavar="N",
        help="N Monte-Carlo dropout samples; writes uncertainty maps (0 = off, the default)",
    )
    parser.add_argument(
        "--gradcam",
        action="append",
        default=[],
        metavar="SEGMENT",
        help="write a Grad-CAM map for this segment (name or label value); may be repeated",
    )
    add_gradcam_layer_argument(parser)
    parser.add_argument(
        "--stl",
        action="store_true",
        help="also export a surface mesh per segment into meshes/ (as export-stl, default options)",
    )
    parser.add_argument(
        "--detect",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="find nodules and masses from the same network pass and make them the `lung nodule` "
        "segment (findings.json and nodules.nii.gz beside it, as `detect` writes them); the default "
        "for models with lungs and a `lung nodule` segment, such as the built-in chest CT model. "
        "--no-detect: the network's own segments only",
    )
    add_dicom_out_argument(parser, "the segmentation as a DICOM SEG (segmentation_seg.dcm)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run `segment` as CONTRACT.md describes; returns the exit code."""
    request = JobRequest(
        command="segment",
        input=args.input,
        output=args.output,
        series=args.series,
        model=args.model,
        device=args.device,
        fast=args.fast,
        threads=args.threads,
        threshold=args.threshold,
        uncertainty=args.uncertainty,
        segment_gradcams=tuple(args.gradcam),
        gradcam_layer=args.gradcam_layer,
        findings_gradcam=args.detect is True and bool(args.gradcam),
        detect=args.detect,
        stl=args.stl,
        dicom_out=args.dicom_out,
    )
    run_job(request, progress_for(args))
    return 0
