"""Model cards: the machine-readable description that sits next to a model's weights.

A model folder holds ``model_card.json`` (this schema), the weights file it names, and
usually a human-readable ``MODEL_CARD.md``. A card with missing fields is refused.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InputError
from .terminology import terminology_for

CARD_FILE = "model_card.json"

REQUIRED_FIELDS = (
    "name",
    "version",
    "task",
    "labels",
    "input",
    "network",
    "weights",
    "training",
    "metrics",
    "limits",
)
REQUIRED_INPUT_FIELDS = ("spacing", "normalization", "patch_size")
REQUIRED_LABEL_FIELDS = ("value", "name", "color", "terminology")
TASKS = ("segmentation", "detection")


DEFAULT_LABEL_COLOR = (128, 174, 128)


@dataclass(frozen=True)
class LabelInfo:
    """One output segment: label value, name, RGB colour (0-255) and SNOMED terminology.

    The one segment description of the engine, the DICOM code and the Slicer adapters.
    """

    value: int
    name: str
    color: tuple[int, int, int] = DEFAULT_LABEL_COLOR
    terminology: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The ``labels.json`` entry for this segment."""
        return {
            "value": self.value,
            "name": self.name,
            "color": list(self.color),
            "terminology": self.terminology,
        }

    @classmethod
    def from_json(cls, entry: dict[str, Any]) -> LabelInfo:
        """Parse one ``labels.json`` entry; a missing terminology falls back to the known names.

        Raises:
            KeyError, TypeError, ValueError: the entry lacks ``value``/``name`` or is malformed.
        """
        name = str(entry["name"])
        color = tuple(int(round(c)) for c in (entry.get("color") or DEFAULT_LABEL_COLOR)[:3])
        if len(color) != 3:
            raise ValueError(f"label {name!r}: color needs three values (r, g, b)")
        terminology = entry.get("terminology") or terminology_for(name) or {}
        return cls(int(entry["value"]), name, color, dict(terminology))  # type: ignore[arg-type]


def read_labels_json(path: str | os.PathLike) -> list[LabelInfo]:
    """Read a CONTRACT ``labels.json`` (``{"labels": [{"value", "name", "color", "terminology"}]}``).

    Raises:
        InputError: the file is missing or not in that format.
    """
    path = Path(path)
    try:
        return [LabelInfo.from_json(entry) for entry in json.loads(path.read_text())["labels"]]
    except FileNotFoundError:
        raise InputError(f"{path}: no such file; give the labels.json written with the label map") from None
    except (ValueError, KeyError, TypeError) as error:
        raise InputError(
            f"{path}: not a valid labels.json ({error}); "
            'expected {"labels": [{"value", "name", "color", ...}]}'
        ) from None


@dataclass(frozen=True)
class ModelCard:
    """A parsed, validated model card. ``folder`` is where the card was read from."""

    name: str
    version: str
    task: str
    labels: tuple[LabelInfo, ...]
    input: dict[str, Any]
    network: dict[str, Any]
    weights: dict[str, Any]
    training: dict[str, Any]
    metrics: dict[str, Any]
    limits: list[str]
    description: str = ""
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
    folder: Path | None = field(default=None, compare=False)

    @property
    def spacing(self) -> tuple[float, float, float]:
        """Model input spacing (x, y, z) in mm."""
        return tuple(float(s) for s in self.input["spacing"])  # type: ignore[return-value]

    @property
    def patch_size(self) -> tuple[int, int, int]:
        """Sliding-window patch size (z, y, x) in voxels."""
        return tuple(int(s) for s in self.input["patch_size"])  # type: ignore[return-value]

    def label(self, name_or_value: str | int) -> LabelInfo:
        """Find a label by name (case-insensitive, ``_`` = space) or value.

        Raises:
            InputError: no such label.
        """
        wanted = str(name_or_value).strip().lower().replace("_", " ")
        for label in self.labels:
            if label.name.lower() == wanted or str(label.value) == wanted:
                return label
        names = ", ".join(repr(label.name) for label in self.labels)
        raise InputError(f"model {self.name!r} has no segment {name_or_value!r}; it has {names}")


def parse_model_card(
    data: dict[str, Any], source: str = "model card", folder: Path | None = None
) -> ModelCard:
    """Validate a card dictionary.

    Raises:
        InputError: a required field is missing or malformed.
    """
    missing = [name for name in REQUIRED_FIELDS if name not in data]
    if missing:
        raise InputError(
            f"{source}: model card is missing {', '.join(missing)}; "
            f"every model card needs {', '.join(REQUIRED_FIELDS)}"
        )
    if data["task"] not in TASKS:
        raise InputError(f"{source}: task {data['task']!r} is not one of {', '.join(TASKS)}")
    missing_input = [name for name in REQUIRED_INPUT_FIELDS if name not in data["input"]]
    if missing_input:
        raise InputError(f"{source}: model card input is missing {', '.join(missing_input)}")
    if "name" not in data["network"] or "file" not in data["weights"] or "sha256" not in data["weights"]:
        raise InputError(f"{source}: model card needs network.name, weights.file and weights.sha256")
    labels = []
    for entry in data["labels"]:
        missing_label = [name for name in REQUIRED_LABEL_FIELDS if name not in entry]
        if missing_label:
            raise InputError(
                f"{source}: label {entry.get('name', entry)!r} is missing {', '.join(missing_label)}"
            )
        labels.append(
            LabelInfo(
                int(entry["value"]),
                str(entry["name"]),
                tuple(int(c) for c in entry["color"]),
                dict(entry["terminology"]),
            )
        )  # type: ignore[arg-type]
    if not labels:
        raise InputError(f"{source}: model card lists no labels")
    return ModelCard(
        name=str(data["name"]),
        version=str(data["version"]),
        task=str(data["task"]),
        labels=tuple(labels),
        input=dict(data["input"]),
        network=dict(data["network"]),
        weights=dict(data["weights"]),
        training=dict(data["training"]),
        metrics=dict(data["metrics"]),
        limits=list(data["limits"]),
        description=str(data.get("description", "")),
        raw=dict(data),
        folder=folder,
    )


def load_model_card(folder: str | Path) -> ModelCard:
    """Read and validate ``folder/model_card.json``.

    Raises:
        InputError: the card is absent, not JSON, or incomplete.
    """
    folder = Path(folder)
    path = folder / CARD_FILE
    if not path.is_file():
        raise InputError(
            f"{folder}: no {CARD_FILE} found; a model folder needs a model card next to its weights"
        )
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise InputError(f"{path}: model card is not valid JSON ({error})") from None
    return parse_model_card(data, source=str(path), folder=folder)
