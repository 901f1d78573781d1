"""A procedural chest phantom defined in patient coordinates, and a stand-in network.

Anatomy is placed in LPS millimetres, so the same patient appears on any grid (flipped,
oblique, anisotropic): body ellipsoid (0 HU), two air-filled lungs (-850 HU) with the
LEFT lung at larger LPS x, a dense nodule (200 HU) in the left lung, and optionally a
dense blob in the soft tissue outside the lungs.
"""

from __future__ import annotations

import numpy as np
import torch
from MedSegAILib.io import Volume
from torch import nn

CENTER = np.array([0.0, 0.0, 0.0])
LEFT_LUNG = CENTER + [60.0, 0.0, 0.0]
RIGHT_LUNG = CENTER - [60.0, 0.0, 0.0]
NODULE = LEFT_LUNG + [10.0, -10.0, 10.0]
OUTSIDE_BLOB = CENTER + [0.0, 80.0, 0.0]
SKIN_RIM_HU = -700.0


def rotation(degrees_z: float, degrees_x: float) -> np.ndarray:
    """A rotation about z, then x (an oblique direction matrix)."""
    cz, sz = np.cos(np.radians(degrees_z)), np.sin(np.radians(degrees_z))
    cx, sx = np.cos(np.radians(degrees_x)), np.sin(np.radians(degrees_x))
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    return rx @ rz


def chest_phantom(
    spacing=(4.0, 4.0, 4.0),
    extent_mm=(320.0, 240.0, 200.0),
    direction: np.ndarray | None = None,
    outside_blob: bool = False,
    skin_rim: bool = False,
    lung_bridge: bool = False,
) -> Volume:
    """The phantom on a grid with ``spacing`` and ``direction`` centred on the patient.

    ``skin_rim`` adds a 5 mm shell of -700 HU around the body (partial volume at the skin);
    ``lung_bridge`` joins the lungs across the midline (like the anterior junction).
    """
    direction = np.eye(3) if direction is None else np.asarray(direction, dtype=float)
    spacing = np.asarray(spacing, dtype=float)
    size = np.maximum(2, np.round(np.asarray(extent_mm) / spacing).astype(int))
    origin = CENTER - direction @ (spacing * (size - 1) / 2.0)
    volume = Volume(np.zeros(size[::-1], dtype=np.float32), tuple(spacing), tuple(origin), direction)
    k, j, i = np.meshgrid(*[np.arange(n) for n in size[::-1]], indexing="ij")
    points = volume.ijk_to_lps(np.stack([i, j, k], axis=-1).astype(float))

    def inside(center, radii) -> np.ndarray:
        return (((points - center) / np.asarray(radii)) ** 2).sum(axis=-1) <= 1.0

    hu = np.full(points.shape[:3], -1024.0, dtype=np.float32)
    if skin_rim:
        hu[inside(CENTER, (145.0, 105.0, 95.0))] = SKIN_RIM_HU
    hu[inside(CENTER, (140.0, 100.0, 90.0))] = 0.0
    hu[inside(LEFT_LUNG, (45.0, 60.0, 70.0))] = -850.0
    hu[inside(RIGHT_LUNG, (45.0, 60.0, 70.0))] = -850.0
    if lung_bridge:
        bridge = (
            (np.abs(points[..., 0]) < 30.0)
            & (np.abs(points[..., 1] + 20.0) < 8.0)
            & (np.abs(points[..., 2]) < 20.0)
        )
        hu[bridge] = -850.0
    hu[inside(NODULE, (12.0, 12.0, 12.0))] = 200.0
    if outside_blob:
        hu[inside(OUTSIDE_BLOB, (10.0, 10.0, 10.0))] = 200.0
    volume.array = hu
    return volume


class ThresholdNet(nn.Module):
    """A stand-in network whose output the test controls: classes by input intensity.

    With the window normalisation [-1024, 600] HU -> [-1, 1]: lung for -950..-500 HU,
    lung nodule above 113 HU, never airway, background elsewhere.
    """

    divisor = 1

    def features(self, x: torch.Tensor) -> torch.Tensor:
        hu = (x + 1.0) * 812.0 - 1024.0
        lung = ((hu > -950) & (hu < -500)).float()
        nodule = (hu > 113).float()
        background = 1.0 - torch.clamp(lung + nodule, max=1.0)
        return torch.cat([background, lung, nodule, torch.zeros_like(x)], dim=1)

    def head(self, features: torch.Tensor) -> torch.Tensor:
        return 20.0 * features - 10.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))
