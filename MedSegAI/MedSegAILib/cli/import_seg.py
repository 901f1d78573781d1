"""`medsegai import-seg`: a DICOM SEG as a label map with names (issue 9)."""

from __future__ import annotations

import argparse

from ..errors import NotAvailableYet


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("import-seg", help="convert a DICOM SEG into a label map and labels.json", description=__doc__)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    raise NotAvailableYet("`import-seg` is not available yet: DICOM SEG import is still being built")
