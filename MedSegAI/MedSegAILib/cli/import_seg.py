"""`medsegai import-seg`: a DICOM SEG as a label map with names, on its CT's grid.

Writes ``segmentation.nii.gz`` (label value = segment number, on exactly the reference
CT's voxel grid) and ``labels.json`` (names, colours, terminology codes) into OUTDIR.
A SEG that references another series than the given CT is refused (exit code 2).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..dicom_out.labels import labels_json
from ..dicom_out.seg_import import read_dicom_seg
from ..io import OutputDir, read_volume, write_label_map
from ..io.atomic import write_json
from .common import add_output_argument, add_quiet_argument, progress_for


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "import-seg",
        help="convert a DICOM SEG into a label map and labels.json",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("seg", metavar="SEG", help="the DICOM Segmentation file (.dcm)")
    parser.add_argument(
        "--reference",
        metavar="CT_SERIES",
        required=True,
        help="the CT the SEG was made on: a folder with its DICOM series, or one file of it",
    )
    parser.add_argument(
        "--series", metavar="UID", help="the CT's SeriesInstanceUID when the folder holds several series"
    )
    add_output_argument(parser)
    add_quiet_argument(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    progress = progress_for(args)
    progress(0.0, "reading the reference CT")
    reference = read_volume(Path(args.reference), series_uid=args.series)
    progress(0.5, "reading the DICOM SEG")
    imported = read_dicom_seg(Path(args.seg), reference)
    with OutputDir(args.output) as out:
        write_label_map(imported.labels, reference, out.path("segmentation.nii.gz"))
        write_json(out.path("labels.json"), labels_json(imported.label_infos))
    progress(1.0, f"wrote {len(imported.label_infos)} segments to {args.output}")
    return 0
