"""Write a volume node as the engine's input file, with exact geometry."""

from __future__ import annotations

import os
from pathlib import Path

import SimpleITK as sitk

from ..errors import InputError
from .volume_nodes import volume_from_node

INPUT_SUFFIXES = (".nrrd", ".nii", ".nii.gz", ".mha")


def write_engine_input(volume_node, path: str | os.PathLike) -> Path:
    """Write ``volume_node`` to ``path`` (NRRD, NIfTI or MetaImage) for ``medsegai``.

    The file holds the node's voxels with their original type, and its LPS geometry equals
    the node's RAS geometry (x and y negated), including a linear parent transform.
    NRRD is written uncompressed, the fastest for a temporary file.

    Args:
        volume_node: a ``vtkMRMLScalarVolumeNode``.
        path: the file to write; its suffix picks the format.

    Returns:
        The path written.

    Raises:
        InputError: the node cannot be used (no image, vector volume, non-linear transform)
            or the suffix is not supported.
    """
    path = Path(path)
    if not path.name.lower().endswith(INPUT_SUFFIXES):
        raise InputError(f"{path}: unsupported engine input format; use one of {', '.join(INPUT_SUFFIXES)}")
    volume = volume_from_node(volume_node)
    path.parent.mkdir(parents=True, exist_ok=True)
    compress = not path.name.lower().endswith(".nrrd")
    sitk.WriteImage(volume.to_sitk(), str(path), useCompression=compress)
    return path
