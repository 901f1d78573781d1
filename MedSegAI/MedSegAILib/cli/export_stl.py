"""`medsegai export-stl`: one closed surface per label (engine: issue 6)."""

from __future__ import annotations

import argparse

from ..errors import NotAvailableYet
from .common import add_output_argument, add_quiet_argument


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("export-stl", help="export one closed surface mesh per label", description=__doc__)
    parser.add_argument("labelmap", metavar="LABELMAP", help="integer label map (NIfTI, NRRD, MetaImage)")
    add_output_argument(parser)
    add_quiet_argument(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    raise NotAvailableYet("`export-stl` is not available yet: the surface exporter is still being built")
