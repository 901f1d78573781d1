"""The per-mesh report that `export-stl` writes as ``meshes.json``."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from .measure import SurfaceMeasures


@dataclass(frozen=True)
class MeshReport:
    """One label's surface, or why there is none.

    Attributes:
        label: label value in the label map.
        name: segment name.
        file: file name inside the output folder, or ``None`` when no mesh was written.
        closed, manifold, components, volume_mm3, area_mm2, triangles: see
            :class:`~MedSegAILib.mesh.measure.SurfaceMeasures` (zeros when no mesh).
        coords: ``"lps"`` or ``"ras"``.
        warning: why the mesh is missing or was changed, else ``None``.
    """

    label: int
    name: str
    file: str | None
    closed: bool
    manifold: bool
    components: int
    volume_mm3: float
    area_mm2: float
    triangles: int
    coords: str
    warning: str | None = None

    @classmethod
    def measured(cls, label: int, name: str, file: str, measures: SurfaceMeasures, coords: str) -> MeshReport:
        """The report of a written mesh."""
        return cls(label, name, file, coords=coords, **asdict(measures))

    @classmethod
    def missing(cls, label: int, name: str, coords: str, warning: str) -> MeshReport:
        """The report of a label that produced no mesh."""
        return cls(label, name, None, False, False, 0, 0.0, 0.0, 0, coords, warning)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary."""
        return asdict(self)
