"""The engine's input for a volume node: a file with its exact geometry, or its own DICOM series."""

from __future__ import annotations

import os
from pathlib import Path

import SimpleITK as sitk

from ..errors import InputError
from .dicom_source import FileLookup, check_not_transformed, dicom_files_of_volume, link_dicom_series
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


def write_dicom_engine_input(volume_node, file_for_instance: FileLookup, folder: str | os.PathLike) -> Path:
    """A folder holding exactly the DICOM series ``volume_node`` was loaded from (for ``--dicom-out``).

    DICOM SEG and SR must reference the original series, so the engine reads that series
    instead of a converted file. Its outputs carry the series' geometry, which is the node's
    when the node is not under a transform.

    Args:
        volume_node: a scalar volume node loaded with Slicer's DICOM module.
        file_for_instance: the DICOM database's lookup (``slicer.dicomDatabase.fileForInstance``).
        folder: the folder to create (it must not exist yet).

    Returns:
        ``folder``, the engine's ``INPUT``.

    Raises:
        InputError: the node did not come from DICOM, is under a transform, or its files are missing.
    """
    files = dicom_files_of_volume(volume_node, file_for_instance)
    if not files:
        raise InputError(
            f"{volume_node.GetName()}: the volume was not loaded from DICOM, "
            "so no DICOM SEG / SR can refer to it; "
            "load the CT with the DICOM module, or turn DICOM export off"
        )
    check_not_transformed(volume_node, "DICOM export")
    return link_dicom_series(files, folder)
