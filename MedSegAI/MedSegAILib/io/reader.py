"""Read a CT volume from a file or a DICOM series, with exact geometry.

Every failure a user can fix raises :class:`~MedSegAILib.errors.InputError` with one line
naming the file, the problem and what to do.

After reading, the values must look like CT in Hounsfield units (rules and reasons:
docs/inputs.md). Refused:

- any NaN or infinite voxel;
- a constant volume, or one with only two distinct values (a binary mask);
- a volume whose largest value is below :data:`MIN_CT_MAXIMUM_HU` (-500 HU: no tissue at
  all, only air or lung, e.g. an empty or mis-scaled volume);
- a label map: only non-negative integers with at most :data:`MAX_LABEL_VALUES` distinct
  values (CT in HU has air near -1000 HU and thousands of distinct values).
"""

from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from ..errors import InputError
from .dicom_series import read_dicom_series
from .itk_messages import ItkReadError, call_itk
from .volume import Volume

FILE_SUFFIXES = (".nii", ".nii.gz", ".nrrd", ".nhdr", ".mha", ".mhd")
MIN_CT_MAXIMUM_HU = -500.0
MAX_LABEL_VALUES = 256


def read_volume(path: str | os.PathLike, series_uid: str | None = None) -> Volume:
    """Read a 3-D CT volume from NIfTI, NRRD, MetaImage or a DICOM series (folder or one file).

    Args:
        path: a volume file, a folder holding a DICOM series, or one file of a series.
        series_uid: which series to read when a folder holds several (DICOM only).

    Returns:
        The volume, float32 in Hounsfield units, with LPS geometry. ``metadata`` holds
        ``source`` and ``format`` (``nifti``, ``nrrd``, ``metaimage`` or ``dicom``), plus the
        DICOM UIDs, sorted file list and tags for a DICOM series.

    Raises:
        InputError: the path is missing, unreadable, not 3-D, or not a usable CT.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file or folder; check the path")
    if path.is_dir() or not path.name.lower().endswith(FILE_SUFFIXES):
        volume = read_dicom_series(path, series_uid=series_uid)
    elif series_uid:
        raise InputError(f"{path}: --series applies to DICOM input only; leave it out for a volume file")
    else:
        volume = _read_image_file(path)
    check_ct_values(volume, path)
    return volume


def _read_image_file(path: Path) -> Volume:
    try:
        image = call_itk(sitk.ReadImage, str(path))
    except ItkReadError as error:
        raise InputError(
            f"{path}: cannot be read as a {_format_name(path)} image ({error}); "
            "check that the file is complete, or convert it to NIfTI"
        ) from None
    if _format_name(path) == "nifti":
        _check_nifti_data(path)
    size = image.GetSize()
    if image.GetDimension() != 3 or min(size) < 2:
        raise InputError(f"{path}: image is not 3-D (size {'x'.join(map(str, size))}); give a 3-D CT volume")
    if image.GetNumberOfComponentsPerPixel() != 1:
        raise InputError(
            f"{path}: image has {image.GetNumberOfComponentsPerPixel()} components per voxel "
            "(colour or vector); "
            "give a scalar CT volume"
        )
    image = sitk.Cast(image, sitk.sitkFloat32)
    return Volume.from_sitk(image, metadata={"source": str(path), "format": _format_name(path)})


def _check_nifti_data(path: Path) -> None:
    """Scan a NIfTI file's voxel data, which ITK reads leniently.

    ITK fills voxels missing from a truncated file with zeros and turns NaN into 0, so
    both would pass unnoticed; here the data are read once more and checked.

    Raises:
        InputError: the data end early or are damaged, or a float voxel is NaN/infinite.
    """
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    reader.ReadImageInformation()
    dimensions = int(reader.GetMetaData("dim[0]"))
    voxels = int(np.prod([int(reader.GetMetaData(f"dim[{axis}]")) for axis in range(1, dimensions + 1)]))
    offset = int(float(reader.GetMetaData("vox_offset")))
    expected = offset + voxels * int(reader.GetMetaData("bitpix")) // 8
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    length, nonfinite, intact = 0, 0, True
    try:
        with opener(path, "rb") as stream:
            header = stream.read(offset)
            length = len(header)
            dtype = _nifti_float_dtype(header, reader.GetMetaData("datatype"))
            chunk_bytes = (1 << 22) * (dtype.itemsize if dtype is not None else 1)
            while chunk := stream.read(chunk_bytes):
                length += len(chunk)
                if dtype is not None:
                    values = np.frombuffer(chunk[: len(chunk) - len(chunk) % dtype.itemsize], dtype=dtype)
                    nonfinite += int(values.size - np.count_nonzero(np.isfinite(values)))
    except (EOFError, OSError, zlib.error):
        intact = False
    if length < expected or not intact:
        raise InputError(
            f"{path}: file is truncated or damaged ({length} of {expected} bytes of image data); "
            "copy or export the file again"
        )
    if nonfinite:
        raise InputError(
            f"{path}: {nonfinite} voxels are NaN or infinite; check the program that exported the volume"
        )


def _nifti_float_dtype(header: bytes, datatype: str) -> np.dtype | None:
    """The numpy type of float voxel data (NIfTI datatype 16 or 64), else None."""
    kind = {"16": "f4", "64": "f8"}.get(datatype.strip())
    if kind is None or len(header) < 4:
        return None
    little = int.from_bytes(header[:4], "little") in (348, 540)  # sizeof_hdr of NIfTI-1 / NIfTI-2
    return np.dtype(("<" if little else ">") + kind)


def _format_name(path: Path) -> str:
    name = path.name.lower()
    if name.endswith((".nii", ".nii.gz")):
        return "nifti"
    if name.endswith((".nrrd", ".nhdr")):
        return "nrrd"
    return "metaimage"


def check_ct_values(volume: Volume, path: str | os.PathLike) -> None:
    """Refuse values that cannot be a CT in Hounsfield units (rules in the module docstring).

    Args:
        volume: the volume read from ``path``.
        path: named in the error message.

    Raises:
        InputError: NaN/infinite values, a constant volume, a binary mask, a label map, or
            no value above -500 HU.
    """
    values = volume.array
    if not np.isfinite(values).all():
        bad = int(values.size - np.isfinite(values).sum())
        raise InputError(
            f"{path}: {bad} voxels are NaN or infinite; check the program that exported the volume"
        )
    low, high = float(values.min()), float(values.max())
    if low == high:
        raise InputError(
            f"{path}: every voxel is {low:g}, so this is not a CT image; give a CT volume in Hounsfield units"
        )
    if high < MIN_CT_MAXIMUM_HU:
        raise InputError(
            f"{path}: no voxel above {MIN_CT_MAXIMUM_HU:g} HU (values {low:g} to {high:g}), "
            "so this is not a CT in "
            "Hounsfield units; give a CT volume"
        )
    if np.all((values == low) | (values == high)):
        raise InputError(
            f"{path}: only two values ({low:g} and {high:g}): a binary mask, not a CT image; "
            "give the CT volume itself"
        )
    if low >= 0 and _is_label_map(values):
        raise InputError(
            f"{path}: only non-negative whole numbers with few distinct values: a label map, not a CT in "
            "Hounsfield units; give the CT volume itself"
        )


def _is_label_map(values: np.ndarray) -> bool:
    """Non-negative integers with at most MAX_LABEL_VALUES distinct values."""
    if values.max() > np.iinfo(np.uint16).max or not np.array_equal(values, np.round(values)):
        return False
    counts = np.bincount(values.astype(np.int64).ravel())
    return int(np.count_nonzero(counts)) <= MAX_LABEL_VALUES
