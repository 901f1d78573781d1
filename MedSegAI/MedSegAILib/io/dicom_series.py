"""Read one DICOM CT series into a :class:`Volume` (to be hardened: see issue 2)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import SimpleITK as sitk

from ..errors import InputError
from .volume import Volume


def read_dicom_series(path: Path, series_uid: Optional[str] = None) -> Volume:
    """Read the DICOM series in ``path`` (a folder, or one file of the series)."""
    folder = path if path.is_dir() else path.parent
    uids = sitk.ImageSeriesReader.GetGDCMSeriesIDs(str(folder))
    if not uids:
        raise InputError(f"{path}: no DICOM series found; give a folder with one CT series")
    uid = series_uid or uids[0]
    files = sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(folder), uid)
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(files)
    image = sitk.Cast(reader.Execute(), sitk.sitkFloat32)
    return Volume.from_sitk(image, metadata={"source": str(path), "series_uid": uid, "files": list(files)})
