"""`medsegai evaluate`: measure segmentations and detections against references (issue 4)."""

from __future__ import annotations

import argparse

from ..errors import NotAvailableYet


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("evaluate", help="evaluate predictions against references (FROC, Dice)", description=__doc__)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    raise NotAvailableYet("`evaluate` is not available yet: the evaluation engine is still being built")
