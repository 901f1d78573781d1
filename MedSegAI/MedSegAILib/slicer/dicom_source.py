"""The DICOM files a volume node was loaded from, for DICOM SEG/SR export and SEG import.

Slicer's DICOM module stores the SOP Instance UIDs of a loaded series in the node attribute
``DICOM.instanceUIDs`` (space-separated); its database maps each UID to a file
(``slicer.dicomDatabase.fileForInstance``). The caller passes that lookup in, so this module
needs no DICOM database (tests give a dictionary's ``get``) and imports no DICOM library.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path

import slicer

from ..errors import InputError
from ..io import Volume
from .volume_nodes import volume_from_node

INSTANCE_UIDS_ATTRIBUTE = "DICOM.instanceUIDs"

FileLookup = Callable[[str], str]
"""SOP Instance UID -> file path ("" when the database does not know the instance)."""


def slicer_dicom_database_file(uid: str) -> str:
    """The file of a DICOM instance in Slicer's DICOM database ("" when unknown, or without a database)."""
    database = getattr(slicer, "dicomDatabase", None)
    return database.fileForInstance(uid) if database is not None else ""


def instance_uids(volume_node) -> list[str]:
    """The SOP Instance UIDs a volume node was loaded from, in the attribute's order, no repeats.

    Returns:
        An empty list when the node did not come from Slicer's DICOM module.
    """
    text = volume_node.GetAttribute(INSTANCE_UIDS_ATTRIBUTE) if volume_node is not None else None
    return list(dict.fromkeys((text or "").split()))


def dicom_files_of_volume(volume_node, file_for_instance: FileLookup) -> list[Path]:
    """The DICOM files of the series ``volume_node`` was loaded from.

    Args:
        volume_node: a scalar volume node.
        file_for_instance: the DICOM database's lookup, e.g. ``slicer.dicomDatabase.fileForInstance``.

    Returns:
        One file per instance; an empty list when the volume did not come from DICOM.

    Raises:
        InputError: an instance is not in the database, or its file is gone.
    """
    files = []
    for uid in instance_uids(volume_node):
        name = file_for_instance(uid) or ""
        if not name:
            raise InputError(
                f"{volume_node.GetName()}: DICOM instance {uid} is not in Slicer's DICOM database; "
                "import the series again with the DICOM module"
            )
        path = Path(name)
        if not path.is_file():
            raise InputError(
                f"{path}: DICOM file of {volume_node.GetName()} is missing; "
                "import the series again with the DICOM module"
            )
        files.append(path)
    return files


def link_dicom_series(files: Sequence[Path], folder: str | os.PathLike) -> Path:
    """A new folder holding exactly ``files``: symbolic links, or copies where links are not allowed.

    The engine then reads exactly the instances the node holds, even when the files share a
    folder with other series or with instances Slicer loaded as another volume.

    Returns:
        ``folder`` (created; it must not exist yet).
    """
    folder = Path(folder)
    folder.mkdir(parents=True)
    for index, source in enumerate(files):
        target = folder / f"{index:05d}_{source.name}"  # the index keeps equal basenames apart
        try:
            target.symlink_to(source.resolve())
        except OSError:  # e.g. Windows without the symlink privilege
            shutil.copy2(source, target)
    return folder


def check_not_transformed(volume_node, purpose: str) -> None:
    """Refuse a volume under a transform: it no longer lies where its DICOM series says.

    Raises:
        InputError: the node has a parent transform.
    """
    if volume_node.GetParentTransformNode() is not None:
        raise InputError(
            f"{volume_node.GetName()}: the volume is under a transform, "
            "so it no longer lies where its DICOM series does; "
            f"remove the transform (Data module) for {purpose}"
        )


def dicom_volume_of_node(volume_node, file_for_instance: FileLookup, purpose: str) -> Volume:
    """The node as an engine volume whose ``metadata["files"]`` lists its DICOM series.

    The geometry is the node's own, so DICOM code that places objects on the series'
    slices (:func:`MedSegAILib.dicom_out.source.source_series_of`) checks that the files
    lie exactly on the node's grid.

    Args:
        volume_node: a scalar volume node loaded with Slicer's DICOM module.
        file_for_instance: the DICOM database's lookup.
        purpose: what the series is needed for, used in error messages.

    Raises:
        InputError: the node did not come from DICOM, is under a transform, or its files are missing.
    """
    files = dicom_files_of_volume(volume_node, file_for_instance)
    if not files:
        raise InputError(
            f"{volume_node.GetName()}: the volume was not loaded from DICOM, "
            f"so {purpose} has no series to refer to; "
            "load the CT with the DICOM module"
        )
    check_not_transformed(volume_node, purpose)
    volume = volume_from_node(volume_node)
    volume.metadata.update(
        {"source": volume_node.GetName(), "format": "dicom", "files": [str(path) for path in files]}
    )
    return volume
