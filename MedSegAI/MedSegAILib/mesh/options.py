"""Options for turning label maps into surface meshes, with their documented defaults."""

from __future__ import annotations

from dataclasses import dataclass

from .smoothing import filter_coefficients

COORDINATE_SYSTEMS = ("lps", "ras")
FORMATS = ("stl", "obj", "ply")

DEFAULT_SMOOTHING_ITERATIONS = 20
"""Windowed-sinc iterations (as 3D Slicer's closed-surface conversion)."""

DEFAULT_PASSBAND = 0.01
"""Windowed-sinc pass band; 0.01 equals Slicer's default smoothing factor 0.5."""


@dataclass(frozen=True)
class MeshOptions:
    """How meshes are built and written.

    Attributes:
        coords: vertex coordinate system, ``"lps"`` (DICOM, default) or ``"ras"`` (Slicer scene).
        smoothing_iterations: windowed-sinc iterations; 0 turns smoothing off.
        passband: windowed-sinc pass band in (0, 2); smaller smooths more.
        decimate: target fraction of triangles to remove with quadric decimation, 0 <= F < 1.
        keep_largest: keep only each label's largest 6-connected voxel region.
        fill_holes_mm3: fill enclosed background cavities up to this volume (0 = off).
        format: ``"stl"`` (binary), ``"obj"`` or ``"ply"`` (both carry the segment colour).
    """

    coords: str = "lps"
    smoothing_iterations: int = DEFAULT_SMOOTHING_ITERATIONS
    passband: float = DEFAULT_PASSBAND
    decimate: float = 0.0
    keep_largest: bool = False
    fill_holes_mm3: float = 0.0
    format: str = "stl"

    def __post_init__(self) -> None:
        if self.coords not in COORDINATE_SYSTEMS:
            raise ValueError(f"coords must be one of {COORDINATE_SYSTEMS}, not {self.coords!r}")
        if self.format not in FORMATS:
            raise ValueError(f"format must be one of {FORMATS}, not {self.format!r}")
        if self.smoothing_iterations < 0:
            raise ValueError(f"smoothing_iterations must be >= 0, not {self.smoothing_iterations}")
        if not 0.0 < self.passband < 2.0:
            raise ValueError(f"passband must be in (0, 2), not {self.passband}")
        if (
            self.smoothing_iterations
            and not filter_coefficients(self.smoothing_iterations, self.passband).converged
        ):
            raise ValueError(
                f"{self.smoothing_iterations} smoothing iterations at pass band {self.passband} "
                "give no stable "
                "windowed-sinc filter (it would shrink or scatter the surface); use more iterations "
                f"(the default is {DEFAULT_SMOOTHING_ITERATIONS}) or another pass band"
            )
        if not 0.0 <= self.decimate < 1.0:
            raise ValueError(f"decimate must satisfy 0 <= F < 1, not {self.decimate}")
        if self.fill_holes_mm3 < 0:
            raise ValueError(f"fill_holes_mm3 must be >= 0, not {self.fill_holes_mm3}")
