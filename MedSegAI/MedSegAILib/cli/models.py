"""`medsegai models list|show`: the installed models (registry: issue 3)."""

from __future__ import annotations

import argparse

from ..errors import NotAvailableYet


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("models", help="list and show installed models", description=__doc__)
    actions = parser.add_subparsers(dest="models_command", metavar="ACTION")
    listing = actions.add_parser("list", help="list installed models")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    show = actions.add_parser("show", help="show one model's card")
    show.add_argument("name", metavar="NAME")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    raise NotAvailableYet("`models` is not available yet: the model registry is still being built")
