"""A stand-in for the chest CT network, for testing detection end to end without weights.

It labels lung by density (-950..-500 HU) and a nodule where soft tissue is mostly
surrounded by lung, so a synthetic chest gives a known nodule probability. Only its
outputs' shape and class order matter to the engine.
"""

from __future__ import annotations

import numpy as np
import torch
from MedSegAILib.io import Volume
from MedSegAILib.models.card import parse_model_card
from MedSegAILib.models.loaded import LoadedModel
from MedSegAILib.models.terminology import TERMINOLOGY
from torch import nn

WINDOW = {"type": "window", "min": -1000.0, "max": 400.0}


def to_hu(x: torch.Tensor) -> torch.Tensor:
    return (x + 1.0) / 2.0 * (WINDOW["max"] - WINDOW["min"]) + WINDOW["min"]


class DensityNetwork(nn.Module):
    """Logits for (background, lung, lung nodule) from HU rules."""

    divisor = 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hu = to_hu(x)
        lung = ((hu > -950) & (hu < -500)).float()
        around = nn.functional.avg_pool3d(lung, 9, stride=1, padding=4, count_include_pad=False)
        nodule = (hu > -300).float() * (around > 0.55).float()
        return torch.cat([torch.zeros_like(x), 8 * lung - 4, 12 * nodule - 6], dim=1)


def fake_model() -> LoadedModel:
    labels = [
        {"value": value, "name": name, "color": [200, 100, 100], "terminology": TERMINOLOGY[name]}
        for value, name in ((1, "left lung"), (2, "right lung"), (3, "lung nodule"))
    ]
    card = parse_model_card(
        {
            "name": "density-test",
            "version": "0",
            "task": "segmentation",
            "labels": labels,
            "input": {"spacing": [1.5, 1.5, 1.5], "normalization": WINDOW, "patch_size": [32, 32, 32]},
            "network": {"name": "DensityNetwork", "output_classes": ["background", "lung", "lung nodule"]},
            "weights": {"file": "none", "sha256": "0" * 64},
            "training": {},
            "metrics": {},
            "limits": [],
        }
    )
    return LoadedModel(card=card, network=DensityNetwork().eval(), device=torch.device("cpu"))


def synthetic_chest(direction=None) -> tuple[Volume, np.ndarray, np.ndarray]:
    """A small chest: soft-tissue body, two lungs, a 10 mm nodule in the right lung and a
    soft-tissue block between the lungs (mediastinum). Returns (CT, nodule centre LPS,
    mediastinum centre LPS)."""
    shape = (40, 64, 96)  # k, j, i at 2.0 x 1.5 x 1.5 mm
    spacing = (1.5, 1.5, 2.0)
    volume = Volume(
        np.full(shape, -1000.0, np.float32),
        spacing,
        (-72.0, -48.0, -40.0),
        np.eye(3) if direction is None else direction,
    )
    k, j, i = np.meshgrid(*[np.arange(n) for n in shape], indexing="ij")
    lps = volume.ijk_to_lps(np.stack([i, j, k], axis=-1))
    x, y, z = (
        lps[..., 0] - lps[..., 0].mean(),
        lps[..., 1] - lps[..., 1].mean(),
        lps[..., 2] - lps[..., 2].mean(),
    )
    body = (x / 68) ** 2 + (y / 44) ** 2 <= 1
    volume.array[body] = 40.0
    right = ((x + 34) / 22) ** 2 + (y / 30) ** 2 + (z / 34) ** 2 <= 1  # patient right = -x in LPS
    left = ((x - 34) / 22) ** 2 + (y / 30) ** 2 + (z / 34) ** 2 <= 1
    volume.array[right | left] = -850.0
    nodule_center = np.array([lps[..., 0].mean() - 34.0, lps[..., 1].mean() + 4.0, lps[..., 2].mean() + 6.0])
    volume.array[np.linalg.norm(lps - nodule_center, axis=-1) <= 5.0] = 40.0
    mediastinum = np.array([lps[..., 0].mean(), lps[..., 1].mean(), lps[..., 2].mean()])
    return volume, nodule_center, mediastinum
