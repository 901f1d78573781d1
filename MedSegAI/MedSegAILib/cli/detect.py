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

from ..dicom_out.commands import add_dicom_out_argument
from ..explain.commands import add_finding_gradcam_arguments
from ..jobs import JobRequest, run_job
from .common import add_input_arguments, add_output_argument, add_run_arguments, progress_for
from .network_options import add_network_arguments, add_threshold_argument


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "detect",
        help="find lung nodules",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_input_arguments(parser)
    add_output_argument(parser)
    add_run_arguments(parser)
    add_network_arguments(parser)
    add_threshold_argument(parser)
    parser.add_argument(
        "--uncertainty",
        type=int,
        default=0,
        metavar="N",
        help="N Monte-Carlo dropout samples; adds an uncertainty to each finding (0 = off, the default)",
    )
    parser.add_argument(
        "--gradcam",
        action="store_true",
        help="write gradcam_nodules.nii.gz: the nodule classifier's Grad-CAM of every finding, one map",
    )
    add_finding_gradcam_arguments(parser)
    add_dicom_out_argument(
        parser, "a DICOM SR of the findings (findings_sr.dcm) and a DICOM SEG of them (nodules_seg.dcm)"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run `detect` as CONTRACT.md describes; returns the exit code."""
    request = JobRequest(
        command="detect",
        input=args.input,
        output=args.output,
        series=args.series,
        model=args.model,
        device=args.device,
        fast=args.fast,
        threads=args.threads,
        threshold=args.threshold,
        uncertainty=args.uncertainty,
        findings_gradcam=args.gradcam,
        findings_gradcam_layer=args.gradcam_layer,
        findings_gradcam_method=args.gradcam_method,
        dicom_out=args.dicom_out,
    )
    result = run_job(request, progress_for(args))
    if not args.quiet:
        print(f"{result.findings} finding(s) at threshold {args.threshold}; written to {args.output}")
    return 0
