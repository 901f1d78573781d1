"""Broken inputs made on the spot, one builder per problem the CLI must refuse with exit 2.

Each builder takes a temporary folder and the ``shared_data`` lookup, and returns the path
to pass as INPUT. The DICOM cases are edited copies of the real CIP series (64x64x79 CT).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pydicom
import SimpleITK as sitk
from pydicom.uid import generate_uid

CIP_SERIES = "cip_lung_ct/ct-64Dicom"

SharedData = Callable[[str], Path]


def ct_like(shape=(30, 40, 40)) -> np.ndarray:
    """Air around a soft-tissue block, with noise: plausible CT values in HU."""
    values = np.full(shape, -1000.0, dtype=np.float32)
    values[5:-5, 5:-5, 5:-5] = 40.0
    return values + np.random.default_rng(0).normal(0, 10, shape).astype(np.float32)


def copy_cip(
    shared_data: SharedData, target: Path, edit: Callable[[int, pydicom.Dataset], None] | None = None
) -> Path:
    """Copy the CIP series into ``target``, calling ``edit(index, dataset)`` on each file."""
    target.mkdir(parents=True, exist_ok=True)
    for index, file in enumerate(sorted(shared_data(CIP_SERIES).iterdir())):
        if edit is None:
            shutil.copyfile(file, target / file.name)
        else:
            dataset = pydicom.dcmread(file)
            edit(index, dataset)
            dataset.save_as(target / file.name)
    return target


def truncated_nifti(tmp: Path, shared_data: SharedData) -> Path:
    path = tmp / "ct.nii.gz"
    sitk.WriteImage(sitk.GetImageFromArray(ct_like()), str(path))
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return path


def text_named_nrrd(tmp: Path, shared_data: SharedData) -> Path:
    path = tmp / "ct.nrrd"
    path.write_text("Findings: no acute abnormality.\n")
    return path


def two_dimensional(tmp: Path, shared_data: SharedData) -> Path:
    path = tmp / "slice.nii.gz"
    sitk.WriteImage(sitk.GetImageFromArray(ct_like()[10]), str(path))
    return path


def missing_slice(tmp: Path, shared_data: SharedData) -> Path:
    folder = copy_cip(shared_data, tmp / "series")
    (folder / "IMG0040.dcm").unlink()
    return folder


def two_series(tmp: Path, shared_data: SharedData) -> Path:
    folder = copy_cip(shared_data, tmp / "series")
    other = generate_uid()

    def relabel(index: int, dataset: pydicom.Dataset) -> None:
        dataset.SeriesInstanceUID = other
        dataset.SOPInstanceUID = generate_uid()

    for file in copy_cip(shared_data, tmp / "other", relabel).iterdir():
        file.rename(folder / f"other_{file.name}")
    return folder


def mr_series(tmp: Path, shared_data: SharedData) -> Path:
    return copy_cip(shared_data, tmp / "series", lambda index, dataset: setattr(dataset, "Modality", "MR"))


def nan_volume(tmp: Path, shared_data: SharedData) -> Path:
    values = ct_like()
    values[15, 20, 20:25] = np.nan
    path = tmp / "ct.nii.gz"
    sitk.WriteImage(sitk.GetImageFromArray(values), str(path))
    return path


def empty_folder(tmp: Path, shared_data: SharedData) -> Path:
    folder = tmp / "empty"
    folder.mkdir()
    return folder


def missing_path(tmp: Path, shared_data: SharedData) -> Path:
    return tmp / "does-not-exist.nii.gz"


BUILDERS = {
    "truncated .nii.gz": truncated_nifti,
    "text file named .nrrd": text_named_nrrd,
    "2-D image": two_dimensional,
    "DICOM slice missing": missing_slice,
    "two DICOM series": two_series,
    "MR series": mr_series,
    "NaN volume": nan_volume,
    "empty folder": empty_folder,
    "missing path": missing_path,
}
"""Problem -> builder (test_cli_bad_input.py holds the message each must produce)."""
