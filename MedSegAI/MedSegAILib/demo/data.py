"""Pick the demo's input: the real chest CT beside the project, else a procedural chest phantom.

The project never commits patient data. On a machine with ``../shared/data`` beside the
repository (as in CI) the demo runs on the real 141-slice chest CT there; elsewhere it
generates a chest phantom (body, ribs, spine, mediastinum, lungs with vessels, trachea and
a 14 mm solid nodule in the right upper lung) so that it still runs end to end offline.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy import ndimage

from ..io.shared_data import shared_data_folder
from ..io.volume import Volume

REAL_CHEST_CT = Path("chest_ct_dicom")
PHANTOM_NODULE_LPS = np.array([-70.0, -10.0, 50.0])  # right upper lung (LPS: right = negative x)


def real_demo_input() -> Path | None:
    """The real chest CT series, or ``None`` when the shared data is not on this machine."""
    folder = shared_data_folder()
    path = folder / REAL_CHEST_CT if folder else None
    return path if path is not None and path.is_dir() else None


def chest_phantom(seed: int = 0, spacing: tuple[float, float, float] = (1.0, 1.0, 2.5)) -> Volume:
    """A synthetic chest CT in HU on an axial LPS grid centred on the patient.

    Args:
        seed: noise and vessel layout.
        spacing: voxel size (x, y, z) in mm.
    """
    rng = np.random.default_rng(seed)
    extent = np.array([380.0, 300.0, 260.0])
    size = np.round(extent / spacing).astype(int)
    origin = -np.asarray(spacing) * (size - 1) / 2.0
    z, y, x = np.meshgrid(
        *[origin[a] + spacing[a] * np.arange(size[a]) for a in (2, 1, 0)], indexing="ij", sparse=True
    )

    def ellipsoid(cx: float, cy: float, cz: float, rx: float, ry: float, rz: float) -> np.ndarray:
        return ((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2 + ((z - cz) / rz) ** 2 <= 1.0

    def cylinder(cx: float, cy: float, rx: float, ry: float) -> np.ndarray:
        return np.broadcast_to(
            ((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2 <= 1.0, (size[2], size[1], size[0])
        )

    hu = np.full((size[2], size[1], size[0]), -1000.0, dtype=np.float32)
    hu[cylinder(0, 0, 170, 120)] = -100.0  # subcutaneous fat
    hu[cylinder(0, 0, 160, 110)] = 40.0  # muscle and mediastinum
    angle = np.arctan2(y, x)
    ribs = (
        cylinder(0, 0, 150, 102)
        & ~cylinder(0, 0, 142, 95)
        & (np.sin(z / 6.0) > 0.3)
        & (np.abs(np.cos(angle)) > 0.15)
    )
    hu[ribs] = 700.0
    hu[cylinder(0, 85, 18, 18)] = 500.0  # vertebral bodies (posterior = +y)
    lungs = ellipsoid(-75, 5, 10, 62, 78, 115) | ellipsoid(75, 5, 10, 62, 78, 115)
    lungs &= ~ellipsoid(10, -20, -40, 55, 50, 60)  # heart bulge into the left lung
    hu[lungs] = -860.0
    vessels = ndimage.gaussian_filter(rng.standard_normal(hu.shape).astype(np.float32), (1.5, 3.0, 3.0))
    hu[lungs & (vessels > 2.2 * vessels.std())] = 30.0  # branching-looking dense strands
    hu[
        ellipsoid(0, -10, 95, 9, 9, 60) | (ellipsoid(-25, -5, 40, 7, 7, 25) | ellipsoid(25, -5, 40, 7, 7, 25))
    ] = -1000.0  # trachea, main bronchi
    nodule = (
        (x - PHANTOM_NODULE_LPS[0]) ** 2 + (y - PHANTOM_NODULE_LPS[1]) ** 2 + (z - PHANTOM_NODULE_LPS[2]) ** 2
    ) <= 7.0**2
    hu[np.broadcast_to(nodule, hu.shape)] = 30.0
    hu = ndimage.gaussian_filter(hu, 0.7) + rng.normal(0.0, 15.0, hu.shape).astype(np.float32)
    return Volume(
        hu.astype(np.float32),
        spacing,
        tuple(origin),
        np.eye(3),
        metadata={"source": "MedSegAI chest phantom"},
    )
