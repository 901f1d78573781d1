"""Write one surface as binary STL, or as OBJ / PLY carrying the segment colour."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import vtkmodules.vtkCommonDataModel as vtk_data
from vtkmodules.util import numpy_support
from vtkmodules.vtkIOPLY import vtkPLYWriter

from ..io.atomic import atomic_path
from .measure import facet_cross_products
from .vtk_arrays import polydata_arrays

_STL_TRIANGLE = np.dtype([("normal", "<f4", 3), ("vertices", "<f4", (3, 3)), ("attribute", "<u2")])


def write_surface(
    surface: vtk_data.vtkPolyData, path: str | os.PathLike, color: tuple[int, int, int], name: str
) -> Path:
    """Write ``surface`` atomically; the format follows the suffix of ``path``.

    Args:
        surface: triangle polydata (point normals used by OBJ/PLY when present).
        path: target file ending in ``.stl`` (binary), ``.obj`` or ``.ply`` (binary).
        color: segment colour, 0-255 RGB, stored by OBJ (vertex colours) and PLY.
        name: segment name, stored in the STL header and OBJ object name.

    Returns:
        ``path``.

    Raises:
        ValueError: the suffix is not a supported format.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    writers = {".stl": _write_stl, ".obj": _write_obj, ".ply": _write_ply}
    if suffix not in writers:
        raise ValueError(f"{path}: unsupported mesh format {suffix!r}; use .stl, .obj or .ply")
    with atomic_path(path) as temporary:
        writers[suffix](surface, temporary, color, name)
    return path


def _write_stl(surface: vtk_data.vtkPolyData, path: Path, color: tuple[int, int, int], name: str) -> None:
    """Binary STL: 80-byte header, triangle count, then unit facet normal + 3 vertices per triangle.

    Written with numpy in one block (several times faster than vtkSTLWriter on lung-sized meshes).
    """
    points, triangles = polydata_arrays(surface)
    records = np.zeros(len(triangles), dtype=_STL_TRIANGLE)
    normals = facet_cross_products(points, triangles)
    lengths = np.sqrt(np.einsum("ij,ij->i", normals, normals))[:, None]
    records["normal"] = np.divide(normals, lengths, out=np.zeros_like(normals), where=lengths > 0)
    records["vertices"] = points[triangles]
    header = f"MedSegAI surface: {name}".encode("ascii", "replace")[:80].ljust(80, b" ")
    with open(path, "wb") as stream:
        stream.write(header)
        stream.write(np.uint32(len(triangles)).tobytes())
        records.tofile(stream)


def _write_ply(surface: vtk_data.vtkPolyData, path: Path, color: tuple[int, int, int], name: str) -> None:
    writer = vtkPLYWriter()
    writer.SetInputData(surface)
    writer.SetFileTypeToBinary()
    writer.SetColorModeToUniformPointColor()
    writer.SetColor(*(int(c) for c in color))
    writer.AddComment(f"MedSegAI surface: {name}")
    writer.SetFileName(str(path))
    if not writer.Write():
        raise OSError(f"{path}: could not write PLY")


def _write_obj(surface: vtk_data.vtkPolyData, path: Path, color: tuple[int, int, int], name: str) -> None:
    """Wavefront OBJ with per-vertex colours (``v x y z r g b``, 0-1) and vertex normals."""
    points, triangles = polydata_arrays(surface)
    rgb = np.broadcast_to(np.asarray(color, dtype=float) / 255.0, points.shape)
    normals_array = surface.GetPointData().GetNormals()
    with open(path, "w", encoding="ascii") as stream:
        stream.write(f"# MedSegAI surface: {name}\no {name.replace(' ', '_')}\n")
        np.savetxt(stream, np.hstack([points, rgb]), fmt="v %.6f %.6f %.6f %.4f %.4f %.4f")
        faces = triangles + 1
        if normals_array is not None:
            np.savetxt(stream, numpy_support.vtk_to_numpy(normals_array), fmt="vn %.6f %.6f %.6f")
            np.savetxt(stream, np.repeat(faces, 2, axis=1), fmt="f %d//%d %d//%d %d//%d")
        else:
            np.savetxt(stream, faces, fmt="f %d %d %d")
