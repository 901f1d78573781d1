"""`medsegai models list|show`: the installed models, from their model cards.

Installed models are the built-in ones plus those in $MEDSEGAI_MODELS (default
~/.medsegai/models). `show` also accepts the path of a model folder.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ..models.card import ModelCard
from ..models.registry import BUILTIN_DIR, installed_models, resolve_model
from .models_install import ACTIONS, register_actions, run_action


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("models", help="list and show installed models", description=__doc__)
    actions = parser.add_subparsers(dest="models_command", metavar="ACTION")
    listing = actions.add_parser("list", help="list installed models")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    show = actions.add_parser("show", help="show one model's card")
    show.add_argument("name", metavar="NAME", help="a model name from `medsegai models list`, or a model folder")
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
        print(json.dumps(summary, indent=2) if args.json else _describe(summary))
        return 0
    if args.models_command in ACTIONS:
        return run_action(args)
    args.models_parser.print_help()
    return 2


def model_summary(card: ModelCard, detailed: bool = False) -> dict[str, Any]:
    """What `models list` (and, with ``detailed``, `models show`) reports about a model."""
    weights = card.folder / card.weights["file"] if card.folder else None
    summary: dict[str, Any] = {
        "name": card.name,
        "version": card.version,
        "task": card.task,
        "labels": [label.name for label in card.labels],
        "spacing_mm": list(card.spacing),
        "fast_spacing_mm": card.input.get("fast_spacing"),
        "size_mb": round(weights.stat().st_size / 1e6, 2) if weights and weights.is_file() else None,
        "weights": {
            "file": str(weights) if weights else card.weights["file"],
            "format": card.weights.get("format", "safetensors"),
            "sha256": card.weights["sha256"],
            "source": card.weights.get("source", "shipped with MedSegAI" if _is_builtin(card) else "user model folder"),
        },
    }
    if detailed:
        summary.update(
            description=card.description,
            labels=[label.to_json() for label in card.labels],
            input=card.input,
            network=card.network,
            training=card.training,
            metrics=card.metrics,
            limits=card.limits,
        )
    return summary


def _is_builtin(card: ModelCard) -> bool:
    return card.folder is not None and BUILTIN_DIR in card.folder.resolve().parents


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


def _describe(summary: dict[str, Any]) -> str:
    lines = [f"{summary['name']} {summary['version']} ({summary['task']})"]
    if summary["description"]:
        lines.append(summary["description"])
    lines.append("labels:")
    lines += [f"  {label['value']}: {label['name']} (colour {tuple(label['color'])})" for label in summary["labels"]]
    fast = summary["fast_spacing_mm"]
    lines.append(f"input spacing: {summary['spacing_mm']} mm" + (f"; fast mode: {fast} mm" if fast else ""))
    lines.append(f"normalisation: {summary['input'].get('normalization')}; patch size (z, y, x): {summary['input'].get('patch_size')}")
    lines.append(f"network: {summary['network'].get('name')} {summary['network'].get('kwargs', {})}")
    weights = summary["weights"]
    lines.append(f"weights: {weights['file']} ({weights['format']}, {summary['size_mb']} MB, source: {weights['source']})")
    lines.append(f"sha256: {weights['sha256']}")
    lines.append("metrics:")
    lines += [f"  {name}: {json.dumps(value)}" for name, value in summary["metrics"].items()] or ["  none recorded"]
    lines.append("training: " + json.dumps(summary["training"]))
    lines.append("limits:")
    lines += [f"  - {limit}" for limit in summary["limits"]] or ["  none recorded"]
    return "\n".join(lines)
