"""`medsegai detect`: find lung nodules (engine: issue 4)."""

from __future__ import annotations

import argparse

from ..errors import NotAvailableYet
from .common import add_input_arguments, add_output_argument, add_run_arguments


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("detect", help="find lung nodules", description=__doc__)
    add_input_arguments(parser)
    add_output_argument(parser)
    add_run_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    raise NotAvailableYet("`detect` is not available yet: the nodule detector is still being built")
