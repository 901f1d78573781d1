"""The DICOM series a volume was read from, slice by slice, for SEG and SR writers.

DICOM objects derived from a CT must reference its instances and sit in its frame of
reference. This module reads the headers of the source files (``Volume.metadata["files"]``)
and orders them by their position on the volume's slice axis ``k``, so frame ``k`` of a
derived object is exactly ``Volume.array[k]``, whatever order the files were listed in.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

from ..errors import InputError
from ..io.volume import Volume

POSITION_TOLERANCE_MM = 0.05  # plus 10 % of the slice spacing (series with slightly uneven slices)
ORIENTATION_TOLERANCE = 1e-3


@dataclass
class SourceSeries:
    """The headers of a volume's DICOM source files, ``datasets[k]`` for slice ``k``."""

    datasets: list[Dataset]

    @property
    def series_instance_uid(self) -> str:
        return str(self.datasets[0].SeriesInstanceUID)

    @property
    def frame_of_reference_uid(self) -> str:
        return str(self.datasets[0].FrameOfReferenceUID)

    @property
    def sop_instance_uids(self) -> list[str]:
        """SOP Instance UIDs in slice order (``k = 0, 1, ...``)."""
        return [str(ds.SOPInstanceUID) for ds in self.datasets]


def source_series_of(volume: Volume, purpose: str = "DICOM output") -> SourceSeries:
    """Read the source series' headers of ``volume`` and order them by slice index ``k``.

    Args:
        volume: a volume read from a DICOM series (``metadata["files"]`` lists its files).
        purpose: what the series is needed for, used in error messages.

    Returns:
        The headers (no pixel data), one per slice, ``datasets[k]`` matching ``array[k]``.

    Raises:
        InputError: the volume was not read from DICOM, or its files do not match its grid.
    """
    files = volume.metadata.get("files")
    source = volume.metadata.get("source", "the input")
    if not files:
        raise InputError(
            f"{source}: {purpose} needs a DICOM series as input (this volume was not read from DICOM); "
            "run on the DICOM series folder instead of a converted file"
        )
    datasets = [_read_header(Path(name)) for name in files]
    return SourceSeries(datasets=_order_by_slice(datasets, volume, source))


def _read_header(path: Path) -> Dataset:
    try:
        dataset = pydicom.dcmread(path, stop_before_pixels=True)
    except (InvalidDicomError, OSError) as error:
        raise InputError(f"{path}: cannot be read as DICOM ({error}); check the source series") from None
    if "SpecificCharacterSet" in dataset and not dataset.SpecificCharacterSet:
        del dataset.SpecificCharacterSet  # empty means the default repertoire; highdicom rejects ''
    return dataset


def _order_by_slice(datasets: list[Dataset], volume: Volume, source: str) -> list[Dataset]:
    """Place each single-frame header at the slice ``k`` its position falls on."""
    n_slices = volume.array.shape[0]
    columns, rows = volume.shape_ijk[0], volume.shape_ijk[1]
    series_uids = {str(ds.get("SeriesInstanceUID", "")) for ds in datasets}
    if len(series_uids) != 1:
        raise InputError(f"{source}: source files belong to {len(series_uids)} series; give one series")
    by_slice: dict[int, Dataset] = {}
    for ds in datasets:
        name = Path(ds.filename).name if getattr(ds, "filename", None) else "a source file"
        if int(ds.get("NumberOfFrames", 1) or 1) != 1:
            raise InputError(
                f"{name}: multi-frame source images are not supported for DICOM output; "
                "use a single-frame series"
            )
        if (int(ds.Rows), int(ds.Columns)) != (rows, columns):
            raise InputError(
                f"{name}: {ds.Rows}x{ds.Columns} pixels, but the volume has {rows}x{columns}; "
                "the files do not match the volume"
            )
        orientation = np.asarray(ds.ImageOrientationPatient, dtype=float)
        if not (
            np.allclose(orientation[:3], volume.direction[:, 0], atol=ORIENTATION_TOLERANCE)
            and np.allclose(orientation[3:], volume.direction[:, 1], atol=ORIENTATION_TOLERANCE)
        ):
            raise InputError(
                f"{name}: image orientation {orientation.tolist()} differs from the volume's; "
                "the files do not match the volume"
            )
        position = np.asarray(ds.ImagePositionPatient, dtype=float)
        nearest = int(round(volume.lps_to_ijk(position)[2]))
        position_error = np.linalg.norm(volume.ijk_to_lps(np.array([0.0, 0.0, nearest])) - position)
        if not 0 <= nearest < n_slices or position_error > POSITION_TOLERANCE_MM + 0.1 * volume.spacing[2]:
            raise InputError(
                f"{name}: its position {list(ds.ImagePositionPatient)} is on no slice of the volume; "
                "the files do not match the volume"
            )
        if nearest in by_slice:
            raise InputError(
                f"{name}: two source files lie on slice {nearest}; the series holds duplicate slices"
            )
        by_slice[nearest] = ds
    if len(by_slice) != n_slices:
        raise InputError(
            f"{source}: {len(by_slice)} source files for {n_slices} slices; the series is incomplete"
        )
    return [by_slice[k] for k in range(n_slices)]
