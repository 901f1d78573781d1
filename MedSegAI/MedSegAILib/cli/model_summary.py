"""What `medsegai models show|list|import|download` report about one model."""

from __future__ import annotations

import json
from typing import Any

from ..models.card import ModelCard
from ..models.registry import BUILTIN_DIR


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
            "source": card.weights.get(
                "source", "shipped with MedSegAI" if _is_builtin(card) else "user model folder"
            ),
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


def describe_model(summary: dict[str, Any]) -> str:
    """The text `models show` (and `models import|download`) prints for a :func:`model_summary`."""
    lines = [f"{summary['name']} {summary['version']} ({summary['task']})"]
    if summary["description"]:
        lines.append(summary["description"])
    lines.append("labels:")
    lines += [
        f"  {label['value']}: {label['name']} (colour {tuple(label['color'])})" for label in summary["labels"]
    ]
    fast = summary["fast_spacing_mm"]
    lines.append(f"input spacing: {summary['spacing_mm']} mm" + (f"; fast mode: {fast} mm" if fast else ""))
    lines.append(
        f"normalisation: {summary['input'].get('normalization')}; "
        f"patch size (z, y, x): {summary['input'].get('patch_size')}"
    )
    lines.append(f"network: {summary['network'].get('name')} {summary['network'].get('kwargs', {})}")
    weights = summary["weights"]
    lines.append(
        f"weights: {weights['file']} ({weights['format']}, {summary['size_mb']} MB, "
        f"source: {weights['source']})"
    )
    lines.append(f"sha256: {weights['sha256']}")
    lines.append("metrics:")
    lines += [f"  {name}: {json.dumps(value)}" for name, value in summary["metrics"].items()] or [
        "  none recorded"
    ]
    lines.append("training: " + json.dumps(summary["training"]))
    lines.append("limits:")
    lines += [f"  - {limit}" for limit in summary["limits"]] or ["  none recorded"]
    return "\n".join(lines)
