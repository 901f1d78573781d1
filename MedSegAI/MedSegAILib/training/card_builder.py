"""Write a model folder: safetensors weights plus a model card that names their SHA-256.

The card's ``labels`` are the engine's OUTPUT segments (after postprocessing splits the
single raw "lung" class into left and right by patient coordinates); the raw network
classes are ``network.output_classes``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from ..models.card import CARD_FILE, load_model_card
from ..models.terminology import terminology_for
from ..models.weights import sha256_of_file
from .cases import NETWORK_CLASSES

MODEL_NAME = "chest_ct"
NETWORK_NAME = "ChestUNet3D"
NETWORK_KWARGS: dict[str, Any] = {
    "in_channels": 1,
    "out_channels": len(NETWORK_CLASSES),
    "channels": [8, 16, 32, 64, 96],
    "head_dropout": 0.2,
}
NORMALIZATION: dict[str, Any] = {"type": "window", "min": -1024, "max": 600, "outside_air": -2.0}
SPACING = [2.0, 2.0, 2.0]
FAST_SPACING = [2.5, 2.5, 2.5]  # the scale augmentation (0.8-1.25) covers 2.5 mm, not 3 mm
PATCH_SIZE = [96, 160, 160]
WEIGHTS_FILE = "model.safetensors"
OUTPUT_LABELS = (
    (1, "left lung", (128, 174, 128)),
    (2, "right lung", (241, 214, 145)),
    (3, "lung nodule", (216, 101, 79)),
    (4, "airway", (183, 156, 220)),
)
DEFAULT_LIMITS = [
    "Research use only; not a medical device.",
    (
        "Trained on four real scans (one full chest CT, two contrast chest crops, the lung bases of one "
        "abdomen CT) plus synthetic nodules; expect failures outside that range (effusions, consolidation, "
        "post-surgical or collapsed lungs, children, very low dose)."
    ),
    (
        "Lung training labels come from a classical threshold pipeline (and TotalSegmentator predictions "
        "for the abdomen), not manual contours: vessels and nodules inside the lung are lung; trachea and "
        "main bronchi are airway."
    ),
    (
        "Nodule figures are measured on synthetic nodules inserted into a held-out 4 mm scan, not on real "
        "nodules; the only real nodule seen in training is one large mass. Small (< 8 mm) and ground-glass "
        "nodules are the least reliable."
    ),
    (
        "Airway is learned from two scans' region-grown pseudo-labels (trachea and main bronchi only); "
        "its Dice on CIP ct-64 compares with a trachea-only reference."
    ),
    (
        "Air outside the patient is detected as pure air (median below -975 HU) reaching the edge of the "
        "volume; a lung with a median below -975 HU (extreme emphysema) cut by the field of view would be "
        "treated as outside air."
    ),
    "The fast mode runs the same weights at 2.5 mm (the training scale augmentation covers 2-2.5 mm).",
]


def output_labels() -> list[dict[str, Any]]:
    """The card's ``labels``: output segments with colours and SNOMED terminology."""
    return [
        {"value": v, "name": n, "color": list(c), "terminology": terminology_for(n)}
        for v, n, c in OUTPUT_LABELS
    ]


def build_card(
    sha256: str,
    training: dict[str, Any],
    metrics: dict[str, Any] | None = None,
    version: str = "0.1.0",
    limits: list[str] | None = None,
    description: str = "",
) -> dict[str, Any]:
    """The model card dictionary for the built-in chest CT model."""
    return {
        "name": MODEL_NAME,
        "version": version,
        "task": "segmentation",
        "description": description
        or "Lungs (left/right by patient coordinates), lung nodules and central airway on chest CT; "
        "a compact 3-D U-Net for CPU inference.",
        "labels": output_labels(),
        "input": {
            "spacing": SPACING,
            "fast_spacing": FAST_SPACING,
            "normalization": NORMALIZATION,
            "patch_size": PATCH_SIZE,
            "orientation": "LPS (canonical, identity direction)",
        },
        "network": {"name": NETWORK_NAME, "kwargs": NETWORK_KWARGS, "output_classes": list(NETWORK_CLASSES)},
        "weights": {"file": WEIGHTS_FILE, "sha256": sha256, "format": "safetensors"},
        "training": training,
        "metrics": metrics or {},
        "limits": limits or DEFAULT_LIMITS,
    }


def save_weights(network: torch.nn.Module, path: Path, half: bool = False) -> str:
    """Write the state_dict as safetensors (atomically); returns its SHA-256."""
    state = {
        k: (v.half() if half and v.is_floating_point() else v).detach().cpu().contiguous()
        for k, v in network.state_dict().items()
    }
    temporary = path.with_suffix(".tmp")
    save_file(state, str(temporary))
    os.replace(temporary, path)
    return sha256_of_file(path)


def write_model_folder(
    folder: Path,
    network: torch.nn.Module,
    training: dict[str, Any],
    metrics: dict[str, Any] | None = None,
    half: bool = False,
    **card_options: Any,
) -> Path:
    """Write weights and card into ``folder`` and check the card loads; returns the card path."""
    folder.mkdir(parents=True, exist_ok=True)
    sha = save_weights(network, folder / WEIGHTS_FILE, half=half)
    return write_card(folder, build_card(sha, training, metrics, **card_options))


def write_card(folder: Path, card: dict[str, Any]) -> Path:
    """Write ``card`` as ``folder/model_card.json`` (atomically) and validate it."""
    path = folder / CARD_FILE
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(card, indent=2) + "\n")
    os.replace(temporary, path)
    load_model_card(folder)
    return path
