"""Read a CT volume from a file or a DICOM series, with exact geometry.

Every failure a user can fix raises :class:`~MedSegAILib.errors.InputError` with one line
naming the file, the problem and what to do.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import numpy as np
import SimpleITK as sitk

from ..errors import InputError
from .dicom_series import read_dicom_series
from .volume import Volume

FILE_SUFFIXES = (".nii", ".nii.gz", ".nrrd", ".nhdr", ".mha", ".mhd")


def read_volume(path: str | os.PathLike, series_uid: Optional[str] = None) -> Volume:
    """Read a 3-D volume from NIfTI, NRRD, MetaImage or a DICOM series (folder or one file).

    Args:
        path: a volume file, a folder holding a DICOM series, or one file of a series.
        series_uid: which series to read when a folder holds several.

    Returns:
        The volume, float32 for CT intensities (HU), with LPS geometry.

    Raises:
        InputError: the path is missing, unreadable, not 3-D, or not a usable CT.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file or folder; check the path")
    if path.is_dir() or not path.name.lower().endswith(FILE_SUFFIXES):
        volume = read_dicom_series(path, series_uid=series_uid)
    else:
        volume = _read_image_file(path)
    _check_values(volume, path)
    return volume


def _read_image_file(path: Path) -> Volume:
    try:
        image = sitk.ReadImage(str(path))
    except RuntimeError:
        raise InputError(
            f"{path}: cannot be read as a {path.suffix or 'volume'} image (corrupt or not an image); "
            "check the file or convert it to NIfTI"
        ) from None
    if image.GetDimension() != 3 or min(image.GetSize()) < 2:
        raise InputError(f"{path}: image is not 3-D (size {image.GetSize()}); give a 3-D CT volume")
    if image.GetNumberOfComponentsPerPixel() != 1:
        raise InputError(f"{path}: image has {image.GetNumberOfComponentsPerPixel()} components per voxel; give a scalar CT volume")
    return Volume.from_sitk(sitk.Cast(image, sitk.sitkFloat32), metadata={"source": str(path)})


def _check_values(volume: Volume, path: Path) -> None:
    if not np.isfinite(volume.array).all():
        raise InputError(f"{path}: volume contains NaN or infinite values; check the export that made it")
