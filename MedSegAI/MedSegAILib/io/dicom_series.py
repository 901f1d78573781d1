"""Read one DICOM CT series into a :class:`Volume`, refusing series that are not a clean 3-D CT.

Headers are read with pydicom; pixels with SimpleITK (GDCM), which decodes compressed
transfer syntaxes such as JPEG 2000 and applies RescaleSlope/RescaleIntercept, so the
volume holds Hounsfield units.

Checks (each failure is an :class:`InputError` naming the folder or file):

- the folder holds DICOM files (non-DICOM files such as a README are ignored; a file
  that starts like DICOM but cannot be parsed is refused by name);
- exactly one series, or the one picked with ``series_uid``;
- the series' Modality is CT (a series without a Modality is accepted; the value-range
  check in :mod:`.reader` still applies);
- at least 2 single-frame slices, all with the same orientation, size and pixel spacing,
  stacked along the slice normal (no gantry tilt / shear);
- even slice spacing with no missing slice, within :data:`GAP_TOLERANCE_FRACTION` of the
  median gap (at least :data:`GAP_TOLERANCE_MM`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
import SimpleITK as sitk
from pydicom.errors import InvalidDicomError

from ..errors import InputError
from .itk_messages import ItkReadError, call_itk
from .volume import Volume

GAP_TOLERANCE_FRACTION = 0.01
"""A gap between neighbouring slices may differ from the median gap by this fraction..."""
GAP_TOLERANCE_MM = 0.02
"""...or by this many millimetres, whichever is larger (positions are rounded in files)."""
ORIENTATION_TOLERANCE = 1e-3
"""Largest difference between two slices' ImageOrientationPatient components."""
SHEAR_TOLERANCE_FRACTION = 0.1
"""Largest sideways drift of a slice, as a fraction of the pixel spacing (gantry tilt)."""

NO_UID = "(no SeriesInstanceUID)"
DICOMDIR_SOP_CLASS = "1.2.840.10008.1.3.10"

_REQUIRED_TAGS = ("ImageOrientationPatient", "ImagePositionPatient", "PixelSpacing", "Rows", "Columns")
_KEPT_TAGS = (
    # patient and study: needed to write DICOM SEG / SR that belong to the same study
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "PatientAge",
    "StudyInstanceUID",
    "StudyDate",
    "StudyTime",
    "StudyID",
    "AccessionNumber",
    "ReferringPhysicianName",
    "StudyDescription",
    # series, equipment and frame of reference
    "SeriesInstanceUID",
    "SeriesNumber",
    "SeriesDescription",
    "Modality",
    "BodyPartExamined",
    "FrameOfReferenceUID",
    "Manufacturer",
    "ManufacturerModelName",
    "SOPClassUID",
)


@dataclass
class _Slice:
    """One DICOM file's header, as far as this module needs it."""

    path: Path
    dataset: pydicom.Dataset

    @property
    def series_uid(self) -> str:
        return str(self.dataset.get("SeriesInstanceUID", "") or NO_UID)


@dataclass(frozen=True)
class SeriesSummary:
    """One series found in a folder: what a user needs to pick it with ``--series``."""

    uid: str
    description: str
    modality: str
    files: int

    def __str__(self) -> str:
        description = f'"{self.description}"' if self.description else "(no description)"
        return f"{self.uid} {description} ({self.modality or 'no modality'}, {self.files} files)"


def list_series(path: Path) -> list[SeriesSummary]:
    """The DICOM series in a folder (or in the folder of one file), largest first.

    Raises:
        InputError: no DICOM file there, or a DICOM file that cannot be parsed.
    """
    groups = _group_by_series(_read_headers(_folder_of(path), path))
    return sorted((_summary(uid, slices) for uid, slices in groups.items()), key=lambda s: (-s.files, s.uid))


def read_dicom_series(path: Path, series_uid: str | None = None) -> Volume:
    """Read a DICOM CT series into a float32 volume in Hounsfield units with LPS geometry.

    Args:
        path: a folder holding the series, or one file of it (the whole series is read).
        series_uid: the SeriesInstanceUID to read when the folder holds several series.

    Returns:
        The volume; ``metadata`` holds the series/study/frame-of-reference UIDs, the
        modality, the sorted file list (``files``, along the slice normal), the sorted
        SOP Instance UIDs and the patient/study tags (``dicom``) that DICOM SEG/SR need.

    Raises:
        InputError: any of the problems listed in this module's docstring.
    """
    path = Path(path)
    folder = _folder_of(path)
    groups = _group_by_series(_read_headers(folder, path))
    uid = _pick_series(path, groups, series_uid)
    slices = groups[uid]
    _check_modality(path, slices)
    geometry = _stack_geometry(path, slices)
    image = _read_pixels(path, [s.path for s in geometry.slices], geometry.size)
    image.SetOrigin(tuple(geometry.origin))
    image.SetSpacing(tuple(geometry.spacing))
    image.SetDirection(tuple(geometry.direction.flatten()))
    return Volume.from_sitk(image, metadata=_metadata(path, uid, geometry.slices))


def _folder_of(path: Path) -> Path:
    return path if path.is_dir() else path.parent


def _read_headers(folder: Path, given: Path) -> list[_Slice]:
    """Headers of every DICOM file directly in ``folder`` (hidden and non-DICOM files skipped)."""
    try:
        entries = sorted(p for p in folder.iterdir() if not p.name.startswith("."))
    except OSError as error:
        raise InputError(
            f"{given}: cannot list the folder ({error.strerror}); check the path and permissions"
        ) from None
    files = [p for p in entries if p.is_file()]
    slices = [s for s in (_read_header(p) for p in files) if s is not None]
    if given.is_file() and not any(s.path == given for s in slices):
        raise InputError(
            f"{given}: not a DICOM file and not a known volume format; "
            "give a NIfTI (.nii/.nii.gz), NRRD (.nrrd/.nhdr), MetaImage (.mha/.mhd) file or a DICOM series"
        )
    if not slices:
        if not entries:
            raise InputError(
                f"{given}: folder is empty; give a folder holding one DICOM CT series or a volume file"
            )
        hint = (
            " (sub-folders are not searched: give the series folder itself)"
            if len(files) < len(entries)
            else ""
        )
        raise InputError(
            f"{given}: no DICOM files found among {len(entries)} entries{hint}; "
            "give a folder holding one DICOM CT series or a volume file"
        )
    return slices


def _read_header(path: Path) -> _Slice | None:
    """The file's header, ``None`` if it is not DICOM; a broken DICOM file is an error."""
    try:
        with path.open("rb") as handle:
            handle.seek(128)
            has_magic = handle.read(4) == b"DICM"
    except OSError as error:
        raise InputError(
            f"{path}: cannot be read ({error.strerror}); check permissions or remove it"
        ) from None
    try:
        dataset = pydicom.dcmread(path, stop_before_pixels=True, force=not has_magic)
    except (InvalidDicomError, EOFError, ValueError, TypeError, KeyError, OSError) as error:
        if not has_magic:
            return None
        raise InputError(
            f"{path}: unreadable DICOM file ({_first_line(error)}); remove it or re-export the series"
        ) from None
    if not any(tag in dataset for tag in ("SOPClassUID", "Modality", "SeriesInstanceUID")):
        if not has_magic:
            return None  # force-parsed bytes that are not DICOM (e.g. a text file)
        if (
            getattr(getattr(dataset, "file_meta", None), "MediaStorageSOPClassUID", None)
            == DICOMDIR_SOP_CLASS
        ):
            return None
        raise InputError(
            f"{path}: incomplete DICOM file (no SOP class, modality or series); "
            "remove it or re-export the series"
        )
    return _Slice(path, dataset)


def _group_by_series(slices: Sequence[_Slice]) -> dict[str, list[_Slice]]:
    groups: dict[str, list[_Slice]] = defaultdict(list)
    for item in slices:
        groups[item.series_uid].append(item)
    return dict(groups)


def _summary(uid: str, slices: Sequence[_Slice]) -> SeriesSummary:
    first = slices[0].dataset
    return SeriesSummary(
        uid=uid,
        description=str(first.get("SeriesDescription", "") or ""),
        modality=str(first.get("Modality", "") or ""),
        files=len(slices),
    )


def _pick_series(path: Path, groups: dict[str, list[_Slice]], series_uid: str | None) -> str:
    """The UID of the series to read: the requested one, the given file's, or the only one."""
    listing = "; ".join(
        str(s) for s in sorted((_summary(u, g) for u, g in groups.items()), key=lambda s: -s.files)
    )
    if series_uid:
        if series_uid not in groups:
            raise InputError(f"{path}: no DICOM series with UID {series_uid}; the series here are: {listing}")
        if path.is_file() and _slice_uid_of(path, groups) != series_uid:
            raise InputError(
                f"{path}: this file belongs to another series than --series {series_uid}; "
                "give the folder instead"
            )
        return series_uid
    if path.is_file():
        return _slice_uid_of(path, groups)
    if len(groups) > 1:
        raise InputError(f"{path}: holds {len(groups)} DICOM series: {listing}; pick one with --series UID")
    return next(iter(groups))


def _slice_uid_of(path: Path, groups: dict[str, list[_Slice]]) -> str:
    return next(uid for uid, slices in groups.items() if any(s.path == path for s in slices))


def _check_modality(path: Path, slices: Sequence[_Slice]) -> None:
    modalities = sorted({str(s.dataset.get("Modality", "") or "") for s in slices} - {""})
    if modalities and modalities != ["CT"]:
        raise InputError(
            f"{path}: series modality is {'/'.join(modalities)}, not CT; "
            "medsegai works on CT only, give a CT series"
        )


@dataclass
class _Geometry:
    slices: list[_Slice]
    origin: np.ndarray
    spacing: np.ndarray
    direction: np.ndarray
    size: tuple[int, int, int]


def _stack_geometry(path: Path, slices: Sequence[_Slice]) -> _Geometry:
    """Sort slices along the slice normal and derive the grid, refusing irregular stacks."""
    for item in slices:
        missing = [tag for tag in _REQUIRED_TAGS if tag not in item.dataset]
        if missing:
            raise InputError(
                f"{item.path}: lacks {', '.join(missing)}, so it is not an image slice with geometry; "
                "give a CT image series (remove this file if it is a report or object)"
            )
        if int(item.dataset.get("NumberOfFrames", 1) or 1) > 1:
            raise InputError(
                f"{item.path}: multi-frame (enhanced) DICOM is not supported; "
                "export the series as classic single-frame CT images or as NIfTI"
            )
    if len(slices) < 2:
        raise InputError(
            f"{path}: the series has only 1 slice, which is not a 3-D volume; "
            "give a CT series with several slices"
        )

    first = slices[0]
    orientation = np.array(first.dataset.ImageOrientationPatient, dtype=float)
    for item in slices[1:]:
        other = np.array(item.dataset.ImageOrientationPatient, dtype=float)
        if other.shape != (6,) or np.abs(other - orientation).max() > ORIENTATION_TOLERANCE:
            raise InputError(
                f"{path}: mixed slice orientations ({first.path.name}: {_fmt(orientation)}, "
                f"{item.path.name}: {_fmt(other)}); give a series with one orientation"
            )
    row, column = orientation[:3], orientation[3:]
    if (
        orientation.shape != (6,)
        or abs(np.dot(row, column)) > ORIENTATION_TOLERANCE
        or min(np.linalg.norm(row), np.linalg.norm(column)) < 0.5
    ):
        raise InputError(
            f"{first.path}: invalid ImageOrientationPatient {_fmt(orientation)}; re-export the series"
        )
    row, column = row / np.linalg.norm(row), column / np.linalg.norm(column)
    normal = np.cross(row, column)

    layout = {
        (int(s.dataset.Rows), int(s.dataset.Columns), *map(float, s.dataset.PixelSpacing)) for s in slices
    }
    if len(layout) > 1:
        raise InputError(
            f"{path}: slices differ in size or pixel spacing {sorted(layout)}; "
            "give a series with one image size"
        )
    rows, columns, row_spacing, column_spacing = layout.pop()

    positions = np.array([s.dataset.ImagePositionPatient for s in slices], dtype=float)
    distance = positions @ normal
    order = np.argsort(distance, kind="stable")
    ordered = [slices[i] for i in order]
    positions, distance = positions[order], distance[order]
    _check_gaps(path, ordered, distance)

    offsets = positions - positions[0]
    sideways = offsets - np.outer(offsets @ normal, normal)
    drift = float(np.linalg.norm(sideways, axis=1).max())
    if drift > SHEAR_TOLERANCE_FRACTION * min(row_spacing, column_spacing):
        raise InputError(
            f"{path}: slices are not stacked along their normal (shifted sideways by up to {drift:.2f} mm, "
            "e.g. gantry tilt); resample the series to a regular grid first"
        )
    slice_spacing = (distance[-1] - distance[0]) / (len(ordered) - 1)
    return _Geometry(
        slices=ordered,
        origin=positions[0],
        spacing=np.array([column_spacing, row_spacing, slice_spacing]),
        direction=np.column_stack([row, column, normal]),
        size=(columns, rows, len(ordered)),
    )


def _check_gaps(path: Path, ordered: Sequence[_Slice], distance: np.ndarray) -> None:
    gaps = np.diff(distance)
    median = float(np.median(gaps))
    tolerance = max(GAP_TOLERANCE_FRACTION * median, GAP_TOLERANCE_MM)
    duplicate = np.flatnonzero(gaps <= tolerance)
    if median <= tolerance or duplicate.size:
        index = int(duplicate[0]) if duplicate.size else 0
        raise InputError(
            f"{path}: several slices at the same position "
            f"({ordered[index].path.name}, {ordered[index + 1].path.name} "
            f"at {distance[index]:.2f} mm); the series mixes acquisitions or phases, export one of them"
        )
    for index in np.flatnonzero(np.abs(gaps - median) > tolerance):
        gap = float(gaps[index])
        between = f"between {ordered[index].path.name} and {ordered[index + 1].path.name}"
        if round(gap / median) >= 2:
            missing = round(gap / median) - 1
            raise InputError(
                f"{path}: missing slice(s): a {gap:.3f} mm gap {between} "
                f"where slices are {median:.3f} mm apart "
                f"(about {missing} missing); re-export the complete series"
            )
        raise InputError(
            f"{path}: uneven slice spacing: gaps from {gaps.min():.3f} to {gaps.max():.3f} mm "
            f"(e.g. {gap:.3f} mm {between}, allowed {median:.3f} +/- {tolerance:.3f} mm); "
            "re-export the series with even spacing or resample it"
        )


def _read_pixels(path: Path, files: Sequence[Path], size: tuple[int, int, int]) -> sitk.Image:
    """Decode the sorted files with GDCM (rescale slope/intercept applied) into float32."""
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames([str(f) for f in files])
    reader.SetOutputPixelType(sitk.sitkFloat32)
    reader.SetSpacingWarningRelThreshold(1e9)  # spacing is checked, and set, by this module
    try:
        image = call_itk(reader.Execute)
    except ItkReadError as error:
        culprit = _first_unreadable(files)
        where = culprit if culprit is not None else path
        raise InputError(f"{where}: pixel data cannot be decoded ({error}); re-export the series") from None
    if image.GetSize() != size:
        raise InputError(
            f"{path}: decoded size {image.GetSize()} does not match the headers; re-export the series"
        )
    return image


def _first_unreadable(files: Sequence[Path]) -> Path | None:
    for file in files:
        try:
            call_itk(sitk.ReadImage, str(file))
        except ItkReadError:
            return file
    return None


def _metadata(path: Path, uid: str, ordered: Sequence[_Slice]) -> dict:
    first = ordered[0].dataset
    tags = {tag: str(first.get(tag, "") or "") for tag in _KEPT_TAGS}
    return {
        "source": str(path),
        "format": "dicom",
        "series_uid": "" if uid == NO_UID else uid,
        "study_uid": tags["StudyInstanceUID"],
        "frame_of_reference_uid": tags["FrameOfReferenceUID"],
        "modality": tags["Modality"],
        "transfer_syntax_uid": str(getattr(getattr(first, "file_meta", None), "TransferSyntaxUID", "") or ""),
        "files": [str(s.path) for s in ordered],
        "sop_instance_uids": [str(s.dataset.get("SOPInstanceUID", "") or "") for s in ordered],
        "dicom": tags,
    }


def _fmt(values: np.ndarray) -> str:
    return "[" + ", ".join(f"{v:g}" for v in values) + "]"


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__
