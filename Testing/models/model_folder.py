"""Test helpers: model folders with random weights (plumbing only, never a real model).

``write_test_model(folder)`` writes a small ``ChestUNet3D`` with random weights as
safetensors plus a complete ``model_card.json`` whose SHA-256 matches.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch
from MedSegAILib.models.networks import build_network
from MedSegAILib.models.terminology import terminology_for
from safetensors.torch import save_file

LABELS = (
    ("left lung", (128, 174, 128)),
    ("right lung", (241, 214, 145)),
    ("lung nodule", (216, 101, 79)),
    ("airway", (183, 156, 220)),
)
NETWORK_KWARGS = {"in_channels": 1, "out_channels": 4, "channels": [4, 8], "head_dropout": 0.2}


def card_dict(
    name: str = "test_random", weights_file: str = "model.safetensors", sha256: str = "0" * 64
) -> dict[str, Any]:
    """A complete card for a random-weight test network (4 mm grid, 8 mm fast grid)."""
    return {
        "name": name,
        "version": "0.0.0-test",
        "task": "segmentation",
        "description": "random weights for plumbing tests; not a model",
        "labels": [
            {"value": value, "name": label, "color": list(color), "terminology": terminology_for(label)}
            for value, (label, color) in enumerate(LABELS, start=1)
        ],
        "input": {
            "spacing": [4.0, 4.0, 4.0],
            "fast_spacing": [8.0, 8.0, 8.0],
            "normalization": {"type": "window", "min": -1024, "max": 600},
            "patch_size": [16, 16, 16],
        },
        "network": {
            "name": "ChestUNet3D",
            "kwargs": dict(NETWORK_KWARGS),
            "output_classes": ["background", "lung", "lung nodule", "airway"],
        },
        "weights": {"file": weights_file, "sha256": sha256, "format": "safetensors"},
        "training": {
            "data": "none (random initialisation)",
            "command": "Testing/models/model_folder.py",
            "seed": 0,
        },
        "metrics": {},
        "limits": ["random weights: output is meaningless"],
    }


def write_test_model(folder: Path, name: str = "test_random", seed: int = 0) -> Path:
    """Write a random-weight model folder; returns ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    network = build_network("ChestUNet3D", **NETWORK_KWARGS)
    weights = folder / "model.safetensors"
    save_file({key: value.contiguous() for key, value in network.state_dict().items()}, str(weights))
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()
    (folder / "model_card.json").write_text(json.dumps(card_dict(name, weights.name, digest), indent=2))
    return folder
