"""`medsegai info`: read an input as `segment` would and print its grid and value range.

A cheap way to check an input before a long run: size, spacing, origin and direction
(LPS), the HU range, and for DICOM the series UID and number of files.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import numpy as np

from ..io import Volume, read_volume
from .common import add_input_arguments


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "info",
        help="check an input: size, spacing, origin, direction, HU range, series UID",
        description=__doc__,
    )
    add_input_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    volume = read_volume(args.input, series_uid=args.series)
    summary = describe(volume)
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        sys.stdout.write(format_text(summary))
    return 0


def describe(volume: Volume) -> dict[str, Any]:
    """A JSON-ready summary of a volume's grid, values and provenance.

    Args:
        volume: a volume from :func:`~MedSegAILib.io.read_volume`.

    Returns:
        ``source``, ``format``, ``size`` (i, j, k), ``spacing_mm``, ``origin_lps_mm``,
        ``direction`` (rows of the 3x3 matrix whose columns are the i, j, k axes in LPS),
        ``hu_range``, ``series_uid`` (None for files) and ``dicom_files`` (0 for files).
    """
    metadata = volume.metadata
    return {
        "source": metadata.get("source"),
        "format": metadata.get("format"),
        "size": list(volume.shape_ijk),
        "spacing_mm": list(volume.spacing),
        "origin_lps_mm": list(volume.origin),
        "direction": volume.direction.tolist(),
        "hu_range": [float(np.min(volume.array)), float(np.max(volume.array))],
        "series_uid": metadata.get("series_uid"),
        "dicom_files": len(metadata.get("files", [])),
    }


def format_text(summary: dict[str, Any]) -> str:
    """The summary as aligned ``name: value`` lines."""
    direction = "  ".join("[" + ", ".join(f"{v:.6g}" for v in row) + "]" for row in summary["direction"])
    lines = [
        ("source", summary["source"]),
        ("format", summary["format"]),
        ("size (i j k)", " x ".join(str(n) for n in summary["size"])),
        ("spacing (mm)", ", ".join(f"{v:.6g}" for v in summary["spacing_mm"])),
        ("origin (LPS mm)", ", ".join(f"{v:.6g}" for v in summary["origin_lps_mm"])),
        ("direction", direction),
        ("HU range", f"{summary['hu_range'][0]:g} to {summary['hu_range'][1]:g}"),
        ("series UID", summary["series_uid"] or "-"),
    ]
    if summary["dicom_files"]:
        lines.append(("DICOM files", summary["dicom_files"]))
    width = max(len(name) for name, _ in lines)
    return "".join(f"{name + ':':<{width + 1}} {value}\n" for name, value in lines)
