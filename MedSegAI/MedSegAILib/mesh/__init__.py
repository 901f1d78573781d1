"""Label map -> closed, outward-facing surfaces in exact patient coordinates (STL/OBJ/PLY)."""

from .export import export_label_meshes, export_meshes_with_report, mesh_file_name
from .measure import SurfaceMeasures, measure_surface
from .options import MeshOptions
from .report import MeshReport
from .surface import mask_surface

__all__ = [
    "MeshOptions",
    "MeshReport",
    "SurfaceMeasures",
    "export_label_meshes",
    "export_meshes_with_report",
    "mask_surface",
    "measure_surface",
    "mesh_file_name",
]
