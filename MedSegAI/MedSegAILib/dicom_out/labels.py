"""Segment descriptions as ``labels.json`` holds them (CONTRACT): value, name, colour, terminology."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..models.terminology import terminology_for


@dataclass(frozen=True)
class LabelInfo:
    """One segment: its label value, name, RGB colour (0-255) and SNOMED terminology."""

    value: int
    name: str
    color: tuple[int, int, int] = (128, 174, 128)
    terminology: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The ``labels.json`` entry for this segment."""
        entry: dict[str, Any] = {"value": self.value, "name": self.name, "color": list(self.color)}
        if self.terminology:
            entry["terminology"] = self.terminology
        return entry

    @classmethod
    def from_json(cls, entry: dict[str, Any]) -> "LabelInfo":
        """Parse one ``labels.json`` entry; terminology falls back to the known names."""
        name = str(entry["name"])
        color = entry.get("color") or cls.color
        terminology = entry.get("terminology") or terminology_for(name) or {}
        return cls(
            value=int(entry["value"]),
            name=name,
            color=tuple(int(round(c)) for c in color[:3]),  # type: ignore[arg-type]
            terminology=dict(terminology),
        )


def read_labels_json(path: str | os.PathLike) -> list[LabelInfo]:
    """Read a CONTRACT ``labels.json`` file.

    Raises:
        InputError: the file is missing or not in the ``{"labels": [...]}`` format.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text())
        return [LabelInfo.from_json(entry) for entry in data["labels"]]
    except FileNotFoundError:
        raise InputError(f"{path}: no such file; give the labels.json written with the label map") from None
    except (ValueError, KeyError, TypeError) as error:
        raise InputError(f"{path}: not a valid labels.json ({error}); expected {{\"labels\": [{{\"value\", \"name\", ...}}]}}") from None


def labels_json(infos: list[LabelInfo]) -> dict[str, Any]:
    """The ``labels.json`` document for ``infos``."""
    return {"labels": [info.to_json() for info in infos]}
