"""Write one surface as binary STL, or as OBJ / PLY carrying the segment colour."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from vtkmodules.util import numpy_support
from vtkmodules.vtkIOPLY import vtkPLYWriter

from ..io.atomic import atomic_path
from .measure import TriangleMesh
from .surface import with_point_normals
from .vtk_arrays import polydata_from_arrays

_STL_TRIANGLE = np.dtype([("normal", "<f4", 3), ("vertices", "<f4", (3, 3)), ("attribute", "<u2")])


def write_surface(
    mesh: TriangleMesh, path: str | os.PathLike, color: tuple[int, int, int], name: str
) -> Path:
    """Write ``mesh`` atomically; the format follows the suffix of ``path``.

    Args:
        mesh: the surface (STL reuses its corners and facet cross products; OBJ/PLY get smooth point normals).
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
        writers[suffix](mesh, temporary, color, name)
    return path


def _write_stl(mesh: TriangleMesh, path: Path, color: tuple[int, int, int], name: str) -> None:
    """Binary STL: 80-byte header, triangle count, then unit facet normal + 3 vertices per triangle.

    One structured numpy array written in one block (several times faster than vtkSTLWriter on
    lung-sized meshes).
    """
    records = np.empty(len(mesh.triangles), dtype=_STL_TRIANGLE)
    cross = mesh.cross
    lengths = np.sqrt(np.einsum("ij,ij->i", cross, cross))[:, None]
    # A degenerate facet has a zero cross product, which stays zero divided by the tiny floor.
    np.divide(cross, np.maximum(lengths, np.finfo(float).tiny), out=records["normal"], casting="same_kind")
    records["vertices"] = mesh.corners
    records["attribute"] = 0
    header = f"MedSegAI surface: {name}".encode("ascii", "replace")[:80].ljust(80, b" ")
    with open(path, "wb") as stream:
        stream.write(header)
        stream.write(np.uint32(len(records)).tobytes())
        records.tofile(stream)


def _write_ply(mesh: TriangleMesh, path: Path, color: tuple[int, int, int], name: str) -> None:
    writer = vtkPLYWriter()
    writer.SetInputData(with_point_normals(polydata_from_arrays(mesh.points, mesh.triangles)))
    writer.SetFileTypeToBinary()
    writer.SetColorModeToUniformPointColor()
    writer.SetColor(*(int(c) for c in color))
    writer.AddComment(f"MedSegAI surface: {name}")
    writer.SetFileName(str(path))
    if not writer.Write():
        raise OSError(f"{path}: could not write PLY")


def _write_obj(mesh: TriangleMesh, path: Path, color: tuple[int, int, int], name: str) -> None:
    """Wavefront OBJ with per-vertex colours (``v x y z r g b``, 0-1) and vertex normals."""
    points, triangles = mesh.points, mesh.triangles
    rgb = np.broadcast_to(np.asarray(color, dtype=float) / 255.0, points.shape)
    normals_array = with_point_normals(polydata_from_arrays(points, triangles)).GetPointData().GetNormals()
    with open(path, "w", encoding="ascii") as stream:
        stream.write(f"# MedSegAI surface: {name}\no {name.replace(' ', '_')}\n")
        np.savetxt(stream, np.hstack([points, rgb]), fmt="v %.6f %.6f %.6f %.4f %.4f %.4f")
        faces = triangles + 1
        if normals_array is not None:
            np.savetxt(stream, numpy_support.vtk_to_numpy(normals_array), fmt="vn %.6f %.6f %.6f")
            np.savetxt(stream, np.repeat(faces, 2, axis=1), fmt="f %d//%d %d//%d %d//%d")
        else:
            np.savetxt(stream, faces, fmt="f %d %d %d")
