"""Render a model folder's ``model_card.json`` as the human-readable ``MODEL_CARD.md``.

The Markdown is generated, never hand-edited, so its figures always equal the card's.
Further sections (``card["sections"]``: title -> Markdown) are appended after the limits.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..models.card import CARD_FILE

MARKDOWN_FILE = "MODEL_CARD.md"
HEADER_NOTES = Path(__file__).with_name("model_card_notes.md")


def _metric_rows(metrics: dict[str, Any]) -> list[str]:
    rows = []
    for section, values in metrics.items():
        if not isinstance(values, dict):
            continue
        for key, value in values.items():
            if isinstance(value, dict):
                value = ", ".join(f"{k} {v}" for k, v in value.items())
            rows.append(f"| {section} | {key} | {value} |")
    return rows


def render_model_card(card: dict[str, Any]) -> str:
    """The Markdown text for a card dictionary."""
    lines = [f"# Model card: {card['name']} {card['version']}", "", card.get("description", ""), ""]
    if HEADER_NOTES.is_file():
        lines += [HEADER_NOTES.read_text().strip(), ""]
    lines += ["## Output segments", "", "| value | name | colour | SNOMED CT type |", "|---|---|---|---|"]
    for label in card["labels"]:
        kind = label["terminology"].get("type", {})
        lines.append(
            f"| {label['value']} | {label['name']} | {tuple(label['color'])} | "
            f"{kind.get('code', '')} {kind.get('meaning', '')} |"
        )
    network = card["network"]
    lines += [
        "",
        "## Input and network",
        "",
        (
            f"- Spacing {card['input']['spacing']} mm (fast mode {card['input'].get('fast_spacing')} mm), "
            "canonical LPS orientation."
        ),
        (
            f"- Intensity: `{json.dumps(card['input']['normalization'])}`; "
            f"sliding-window patch {card['input']['patch_size']} (z, y, x)."
        ),
        (
            f"- Network `{network['name']}` `{json.dumps(network.get('kwargs', {}))}`; "
            f"raw classes {network.get('output_classes')}."
        ),
        "  The engine splits the raw `lung` class into left and right lung by patient coordinates.",
        (
            f"- Weights `{card['weights']['file']}` ({card['weights']['format']}), "
            f"SHA-256 `{card['weights']['sha256']}`."
        ),
        "",
        "## Training",
        "",
        "```json",
        json.dumps(card["training"], indent=2),
        "```",
        "",
        "## Measured performance",
        "",
    ]
    metrics = card.get("metrics") or {}
    if metrics:
        if "command" in metrics:
            lines += [f"Command: `{metrics['command']}`", ""]
        if "evaluated_with" in metrics:
            lines += [f"Evaluated with: {metrics['evaluated_with']}.", ""]
        lines += ["| data | metric | value |", "|---|---|---|"] + _metric_rows(metrics)
    else:
        lines.append("Not measured yet (provisional checkpoint).")
    lines += ["", "## Limits", ""] + [f"- {limit}" for limit in card["limits"]]
    for title, text in (card.get("sections") or {}).items():  # e.g. "Uncertainty", written by its evaluation
        lines += ["", f"## {title}", "", text.strip()]
    return "\n".join(lines) + "\n"


def write_model_card_markdown(folder: Path) -> Path:
    """Write ``folder/MODEL_CARD.md`` from ``folder/model_card.json``; returns its path."""
    card = json.loads((Path(folder) / CARD_FILE).read_text())
    path = Path(folder) / MARKDOWN_FILE
    path.write_text(render_model_card(card))
    return path
