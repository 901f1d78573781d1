"""The engine's volume type: a numpy array plus its patient-space geometry.

Conventions (see docs/coordinates.md):
- ``array`` is indexed ``[k, j, i]`` (slice, row, column), as SimpleITK's
  ``GetArrayFromImage`` returns it.
- ``spacing`` and ``origin`` are ``(x, y, z)`` in millimetres; ``origin`` is the centre of
  voxel ``(i, j, k) = (0, 0, 0)`` in DICOM patient coordinates (LPS).
- ``direction`` is a 3x3 matrix whose *columns* are the i, j, k axis directions in LPS.
- A voxel index ``(i, j, k)`` maps to LPS as ``origin + direction @ (spacing * (i, j, k))``.
  3D Slicer shows RAS: negate x and y.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import SimpleITK as sitk


@dataclass
class Volume:
    """A 3-D image with LPS geometry. ``metadata`` carries provenance (e.g. DICOM UIDs)."""

    array: np.ndarray
    spacing: tuple[float, float, float]
    origin: tuple[float, float, float]
    direction: np.ndarray = field(default_factory=lambda: np.eye(3))
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.spacing = tuple(float(s) for s in self.spacing)  # type: ignore[assignment]
        self.origin = tuple(float(o) for o in self.origin)  # type: ignore[assignment]
        self.direction = np.asarray(self.direction, dtype=float).reshape(3, 3)

    @property
    def shape_ijk(self) -> tuple[int, int, int]:
        """Size along i, j, k (columns, rows, slices)."""
        k, j, i = self.array.shape
        return i, j, k

    def index_to_lps(self) -> np.ndarray:
        """The 4x4 matrix mapping homogeneous ``(i, j, k, 1)`` to LPS millimetres."""
        matrix = np.eye(4)
        matrix[:3, :3] = self.direction @ np.diag(self.spacing)
        matrix[:3, 3] = self.origin
        return matrix

    def index_to_ras(self) -> np.ndarray:
        """The 4x4 matrix mapping homogeneous ``(i, j, k, 1)`` to RAS millimetres (Slicer)."""
        return np.diag([-1.0, -1.0, 1.0, 1.0]) @ self.index_to_lps()

    def ijk_to_lps(self, ijk: np.ndarray) -> np.ndarray:
        """Map ``(..., 3)`` continuous voxel indices (i, j, k) to LPS points."""
        ijk = np.asarray(ijk, dtype=float)
        return ijk @ (self.direction @ np.diag(self.spacing)).T + np.asarray(self.origin)

    def lps_to_ijk(self, lps: np.ndarray) -> np.ndarray:
        """Map ``(..., 3)`` LPS points to continuous voxel indices (i, j, k)."""
        lps = np.asarray(lps, dtype=float)
        inverse = np.linalg.inv(self.direction @ np.diag(self.spacing))
        return (lps - np.asarray(self.origin)) @ inverse.T

    def with_array(self, array: np.ndarray) -> Volume:
        """A volume on the same grid holding ``array`` (shape must match)."""
        if array.shape != self.array.shape:
            raise ValueError(f"array shape {array.shape} does not match grid {self.array.shape}")
        return replace(self, array=array, metadata=dict(self.metadata))

    def crop(self, box: tuple[slice, slice, slice]) -> Volume:
        """The sub-volume ``array[box]`` (``[k, j, i]`` slices; a view, not a copy) with the
        geometry that keeps every voxel's LPS position."""
        origin = self.ijk_to_lps(np.array([box[2].start, box[1].start, box[0].start], dtype=float))
        return Volume(self.array[box], self.spacing, tuple(origin), self.direction)

    def same_grid(self, other: Volume, tolerance: float = 1e-4) -> bool:
        """True if ``other`` has the same size, spacing, origin and direction."""
        return (
            self.array.shape == other.array.shape
            and np.allclose(self.spacing, other.spacing, atol=tolerance)
            and np.allclose(self.origin, other.origin, atol=tolerance)
            and np.allclose(self.direction, other.direction, atol=tolerance)
        )

    def to_sitk(self) -> sitk.Image:
        """A SimpleITK image with this array and geometry."""
        image = sitk.GetImageFromArray(self.array)
        image.SetSpacing(self.spacing)
        image.SetOrigin(self.origin)
        image.SetDirection(tuple(self.direction.flatten()))
        return image

    @classmethod
    def from_sitk(cls, image: sitk.Image, metadata: dict[str, Any] | None = None) -> Volume:
        """Wrap a 3-D SimpleITK image (geometry copied exactly)."""
        return cls(
            array=sitk.GetArrayFromImage(image),
            spacing=image.GetSpacing(),
            origin=image.GetOrigin(),
            direction=np.array(image.GetDirection()).reshape(3, 3),
            metadata=dict(metadata or {}),
        )
