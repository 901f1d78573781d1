"""A training case: one scan and its labels at the model spacing, in the network's raw classes.

Raw network classes (``NETWORK_CLASSES``): 0 background, 1 lung, 2 lung nodule, 3 airway.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..models.normalization import outside_air_mask

NETWORK_CLASSES = ("background", "lung", "lung nodule", "airway")
IGNORE = 255  # label outside a cropped scan's field of view: no loss there


@dataclass
class Case:
    """One prepared training scan at the model spacing (canonical LPS, ``[z, y, x]``)."""

    name: str
    hu: np.ndarray  # int16 HU
    label: np.ndarray  # uint8 network classes
    spacing: tuple[float, float, float]
    weight: float  # sampling weight
    cropped: bool = False  # field of view inside the body: what lies outside it is unknown
    outside: np.ndarray = field(default=None)  # type: ignore[assignment]  # air outside the patient

    def __post_init__(self) -> None:
        if self.outside is None:
            self.outside = outside_air_mask(self.hu)
