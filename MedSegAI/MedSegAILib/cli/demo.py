"""`medsegai demo`: the main job end to end on data that ships with the project."""

from __future__ import annotations

import argparse

from ..errors import NotAvailableYet
from .common import add_output_argument, add_quiet_argument


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("demo", help="run segment + detect end to end on bundled data", description=__doc__)
    add_output_argument(parser)
    add_quiet_argument(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    raise NotAvailableYet("`demo` is not available yet: it needs the segmentation engine")
