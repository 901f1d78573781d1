"""`medsegai demo`: the main job end to end, offline, on data that needs no download.

Runs `segment --uncertainty 8 --gradcam "lung nodule" --stl --detect` (one network pass for
segmentation and nodule findings) and draws summary.png. The input is the real chest CT in
../shared/data when it is beside the repository, else a generated chest phantom
(`--phantom` forces it; `--input` runs the demo on any CT).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import SimpleITK as sitk

from ..demo.data import chest_phantom, real_demo_input
from ..io import read_volume
from ..jobs import JobRequest, run_job
from ..report.summary_figure import write_summary_png
from .common import add_output_argument, add_quiet_argument, progress_for


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo", help="run segment + detect end to end on bundled data", description=__doc__
    )
    add_output_argument(parser)
    parser.add_argument(
        "--input", metavar="INPUT", help="run the demo on this CT instead (any INPUT that `segment` takes)"
    )
    parser.add_argument(
        "--phantom",
        action="store_true",
        help="use the generated chest phantom even if the real CT is present",
    )
    parser.add_argument(
        "--uncertainty", type=int, default=8, metavar="N", help="Monte-Carlo dropout samples (default: 8)"
    )
    parser.add_argument(
        "--device",
        default="auto",
        metavar="auto|cpu|cuda[:N]|mps",
        help="where to run the network (default: auto)",
    )
    add_quiet_argument(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Segment, detect, explain, mesh and summarise one CT into OUTDIR."""
    with tempfile.TemporaryDirectory(prefix="medsegai-demo-") as scratch:
        source, description = _demo_input(args, Path(scratch))
        if not args.quiet:
            print(f"medsegai demo: {description}", file=sys.stderr)
        request = JobRequest(
            command="segment",
            input=str(source),
            output=args.output,
            device=args.device,
            uncertainty=args.uncertainty,
            segment_gradcams=("lung nodule",),
            findings_gradcam=True,
            detect=True,
            stl=True,
        )
        run_job(request, progress_for(args))
        summary = Path(args.output) / "summary.png"
        write_summary_png(read_volume(source), args.output, summary, title=f"MedSegAI demo: {description}")
    if not args.quiet:
        print(f"medsegai demo: results in {args.output} (look at {summary})", file=sys.stderr)
    return 0


def _demo_input(args: argparse.Namespace, scratch: Path) -> tuple[Path, str]:
    if args.input:
        return Path(args.input), f"CT {args.input}"
    real = None if args.phantom else real_demo_input()
    if real is not None:
        return real, f"real chest CT {real}"
    path = scratch / "chest_phantom.nii.gz"
    sitk.WriteImage(chest_phantom().to_sitk(), str(path), useCompression=True)
    return (
        path,
        "generated chest phantom (../shared/data not found)"
        if not args.phantom
        else "generated chest phantom",
    )
