"""`medsegai evaluate`: measure predictions against references.

`medsegai evaluate detect` computes the FROC of nodule findings (LUNA16 style): a finding
hits a reference nodule when its centre lies within the nodule's radius, at least 5 mm;
each nodule counts once; sensitivity is reported at 1/8, 1/4, 1/2, 1, 2, 4 and 8 false
positives per scan, with their mean, the CPM.
"""

from __future__ import annotations

import argparse
import json
import sys

from ..detection.evaluation_inputs import load_predictions, load_references
from ..detection.froc import compute_froc
from ..detection.froc_plot import write_froc_png
from ..errors import InputError
from ..io.atomic import atomic_path
from ..io.output_dir import OutputDir
from .common import add_output_argument


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="evaluate predictions against references (FROC for detections)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    kinds = parser.add_subparsers(dest="evaluation", metavar="WHAT")
    detect = kinds.add_parser(
        "detect",
        help="FROC and CPM of `medsegai detect` findings",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    detect.add_argument(
        "--predictions",
        nargs="+",
        required=True,
        metavar="DIR_OR_JSON",
        help="folders searched for findings.json (scan id = the folder holding each file), "
        "or findings JSON files (scan id = parent folder for findings.json, else the file name)",
    )
    detect.add_argument(
        "--reference",
        required=True,
        metavar="MASKS_DIR_OR_POINTS_JSON",
        help="a folder of label maps <scan id>.nii.gz (each connected component is a nodule), or a JSON "
        '{"scans": {"<scan id>": [{"center": [x, y, z], "diameter_mm": d}]}} in LPS mm listing every scan',
    )
    add_output_argument(detect)
    detect.set_defaults(func=run_detect)
    parser.set_defaults(func=lambda args: _missing_kind(parser))


def _missing_kind(parser: argparse.ArgumentParser) -> int:
    raise InputError(
        "medsegai evaluate: say what to evaluate (`medsegai evaluate detect ...`); "
        "see `medsegai evaluate --help`"
    )


def run_detect(args: argparse.Namespace) -> int:
    """Write ``froc.json`` and ``froc.png`` into OUTDIR and print the summary."""
    predictions = load_predictions(args.predictions)
    references = load_references(args.reference)
    unknown = sorted(set(predictions) - set(references))
    if unknown:
        raise InputError(
            f"{args.reference}: has no entry for predicted scan(s) {', '.join(unknown)}; "
            f"the reference has {', '.join(sorted(references)) or 'no scans'}"
        )
    missing = sorted(set(references) - set(predictions))
    if missing:
        print(
            f"note: {len(missing)} reference scan(s) have no findings file and count as "
            "scans without findings: "
            f"{', '.join(missing)}",
            file=sys.stderr,
        )
    try:
        result = compute_froc(predictions, references)
    except ValueError as error:
        raise InputError(f"{args.reference}: {error}") from None
    with OutputDir(args.output) as out:
        with atomic_path(out.path("froc.json")) as temporary:
            temporary.write_text(json.dumps(result.to_json(), indent=2) + "\n")
        write_froc_png(result, out.path("froc.png"))
    rates = "  ".join(
        f"{name}: {value:.3f}" for name, value in result.to_json()["sensitivity_at_fp_per_scan"].items()
    )
    print(f"{result.references} nodules in {result.scans} scans; sensitivity at FP/scan  {rates}")
    print(f"CPM {result.cpm:.3f}")
    return 0
