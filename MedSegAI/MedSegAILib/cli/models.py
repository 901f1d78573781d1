"""`medsegai models list|show`: the installed models, from their model cards.

Installed models are the built-in ones plus those in $MEDSEGAI_MODELS (default
~/.medsegai/models). `show` also accepts the path of a model folder.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ..models.registry import installed_models, resolve_model
from .model_summary import describe_model, model_summary
from .models_install import ACTIONS, register_actions, run_action


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("models", help="list and show installed models", description=__doc__)
    actions = parser.add_subparsers(dest="models_command", metavar="ACTION")
    listing = actions.add_parser("list", help="list installed models")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    show = actions.add_parser("show", help="show one model's card")
    show.add_argument(
        "name", metavar="NAME", help="a model name from `medsegai models list`, or a model folder"
    )
    show.add_argument("--json", action="store_true", help="machine-readable output")
    register_actions(actions)
    parser.set_defaults(func=run, models_parser=parser)


def run(args: argparse.Namespace) -> int:
    """Dispatch `models list` / `models show`; returns the exit code."""
    if args.models_command == "list":
        problems: list[str] = []
        summaries = [model_summary(card) for card in installed_models(problems)]
        for problem in problems:
            print(f"medsegai: warning: skipped {problem}", file=sys.stderr)
        if args.json:
            print(json.dumps({"models": summaries}, indent=2))
        else:
            _print_table(summaries)
        return 0
    if args.models_command == "show":
        summary = model_summary(resolve_model(args.name), detailed=True)
        print(json.dumps(summary, indent=2) if args.json else describe_model(summary))
        return 0
    if args.models_command in ACTIONS:
        return run_action(args)
    args.models_parser.print_help()
    return 2


def _print_table(summaries: list[dict[str, Any]]) -> None:
    if not summaries:
        print("no models installed")
        return
    rows = [("NAME", "VERSION", "TASK", "SPACING (mm)", "SIZE (MB)", "LABELS")]
    for s in summaries:
        spacing = "x".join(f"{v:g}" for v in s["spacing_mm"])
        rows.append((s["name"], s["version"], s["task"], spacing, f"{s['size_mb']}", ", ".join(s["labels"])))
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]) - 1)]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[-1])
