"""Read a DICOM SEG onto its source CT's grid as a label map with names, colours and codes.

The SEG must reference the CT series it is applied to; a SEG made on another series is
refused, never resampled or silently misaligned. Frames are placed by the source
instance each one references (highdicom), so the slice order of the files does not matter.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import highdicom as hd
import numpy as np
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

from ..errors import InputError
from ..io.volume import Volume
from .coding import cielab_to_rgb, terminology_of_segment
from .labels import LabelInfo
from .source import source_series_of

DEFAULT_COLOR = (128, 128, 128)
FRAME_TOLERANCE_MM = 0.05


@dataclass
class ImportedSegmentation:
    """A DICOM SEG as a label map on the reference grid (value = segment number)."""

    labels: np.ndarray
    label_infos: list[LabelInfo]


def read_dicom_seg(seg_path: str | os.PathLike, reference: Volume) -> ImportedSegmentation:
    """Read the DICOM SEG ``seg_path`` onto the grid of ``reference`` (its source CT).

    Args:
        seg_path: a DICOM Segmentation Storage file.
        reference: the CT the SEG was made on, read from its DICOM series.

    Returns:
        The label map (``[k, j, i]``, uint8 or uint16, value = segment number) and one
        :class:`LabelInfo` per segment (label, colour, SNOMED category/type).

    Raises:
        InputError: not a readable SEG; the SEG references another series or frame of
            reference than ``reference``; its segments overlap; or it does not say which
            CT slice each frame belongs to.
    """
    seg_path = Path(seg_path)
    segmentation = _read(seg_path)
    source = source_series_of(reference, purpose="DICOM SEG import")
    _check_references(
        segmentation, seg_path, source.series_instance_uid, source.frame_of_reference_uid, reference
    )
    _check_frame_geometry(segmentation, seg_path, source.datasets)
    dtype = np.uint8 if max(segmentation.segment_numbers, default=0) < 256 else np.uint16
    labels = np.zeros(reference.array.shape, dtype=dtype)
    for number in segmentation.segment_numbers:
        mask = (
            segmentation.get_pixels_by_source_instance(
                source_sop_instance_uids=source.sop_instance_uids,
                segment_numbers=[number],
                ignore_spatial_locations=True,  # checked above against the CT's own geometry
                assert_missing_frames_are_empty=True,
            )[..., 0]
            > 0
        )
        if np.any(labels[mask]):
            raise InputError(
                f"{seg_path}: segment {number} overlaps another segment; "
                "a label map cannot hold overlapping segments"
            )
        labels[mask] = number
    return ImportedSegmentation(labels=labels, label_infos=_label_infos(segmentation))


def _read(seg_path: Path) -> hd.seg.Segmentation:
    if not seg_path.is_file():
        raise InputError(f"{seg_path}: no such file; give a DICOM SEG file")
    try:
        return hd.seg.segread(seg_path)
    except (InvalidDicomError, AttributeError, ValueError, KeyError, OSError) as error:
        raise InputError(
            f"{seg_path}: not a readable DICOM Segmentation ({type(error).__name__}: {error}); "
            "give a DICOM SEG file"
        ) from None


def _check_references(
    segmentation: hd.seg.Segmentation,
    seg_path: Path,
    series_uid: str,
    frame_of_reference_uid: str,
    reference: Volume,
) -> None:
    """Refuse a SEG that was made on another series or in another frame of reference."""
    source_name = reference.metadata.get("source", "the reference CT")
    referenced = {str(item.SeriesInstanceUID) for item in segmentation.get("ReferencedSeriesSequence", [])}
    referenced |= {series for _, series, _ in segmentation.get_source_image_uids()}
    if series_uid not in referenced:
        listed = ", ".join(sorted(referenced)) or "no series"
        raise InputError(
            f"{seg_path}: references series {listed}, not the reference CT series {series_uid} "
            f"({source_name}); "
            "give the CT series the SEG was made on"
        )
    seg_frame = segmentation.get("FrameOfReferenceUID")
    if seg_frame and str(seg_frame) != frame_of_reference_uid:
        raise InputError(
            f"{seg_path}: frame of reference {seg_frame} differs from the CT's {frame_of_reference_uid} "
            f"({source_name}); "
            "give the CT series the SEG was made on"
        )


def _check_frame_geometry(segmentation: hd.seg.Segmentation, seg_path: Path, datasets: list[Dataset]) -> None:
    """Every frame must lie exactly on the CT slice it references (position, orientation, size)."""
    by_uid = {str(ds.SOPInstanceUID): ds for ds in datasets}
    if (int(segmentation.Rows), int(segmentation.Columns)) != (
        int(datasets[0].Rows),
        int(datasets[0].Columns),
    ):
        raise InputError(
            f"{seg_path}: frames are {segmentation.Rows}x{segmentation.Columns} pixels, the CT slices "
            f"{datasets[0].Rows}x{datasets[0].Columns}; only SEGs on the CT's own pixel grid can be imported"
        )
    shared = segmentation.SharedFunctionalGroupsSequence[0]
    for number, frame in enumerate(segmentation.PerFrameFunctionalGroupsSequence, start=1):
        sources = [
            str(image.ReferencedSOPInstanceUID)
            for derivation in frame.get("DerivationImageSequence", [])
            for image in derivation.get("SourceImageSequence", [])
        ]
        matched = [by_uid[uid] for uid in sources if uid in by_uid]
        if not matched:
            raise InputError(
                f"{seg_path}: frame {number} references none of the CT's slices; "
                "the SEG must reference the CT images frame by frame"
            )
        ct = matched[0]
        position = _functional(frame, shared, "PlanePositionSequence").ImagePositionPatient
        orientation = _functional(frame, shared, "PlaneOrientationSequence").ImageOrientationPatient
        spacing = _functional(frame, shared, "PixelMeasuresSequence").PixelSpacing
        if not (
            np.allclose(
                np.asarray(position, float),
                np.asarray(ct.ImagePositionPatient, float),
                atol=FRAME_TOLERANCE_MM,
            )
            and np.allclose(
                np.asarray(orientation, float), np.asarray(ct.ImageOrientationPatient, float), atol=1e-3
            )
            and np.allclose(np.asarray(spacing, float), np.asarray(ct.PixelSpacing, float), atol=1e-3)
        ):
            raise InputError(
                f"{seg_path}: frame {number} lies at {list(position)}, not on the CT slice it references "
                f"({list(ct.ImagePositionPatient)}); the SEG does not match this CT's geometry"
            )


def _functional(frame: Dataset, shared: Dataset, name: str) -> Dataset:
    """A functional group item from the frame, else from the shared groups."""
    items = frame.get(name) or shared.get(name)
    if not items:
        raise InputError(f"a DICOM SEG without {name}: cannot place its frames; the SEG is incomplete")
    return items[0]


def _label_infos(segmentation: hd.seg.Segmentation) -> list[LabelInfo]:
    infos = []
    for number in segmentation.segment_numbers:
        description = segmentation.get_segment_description(number)
        lab = description.get("RecommendedDisplayCIELabValue")
        infos.append(
            LabelInfo(
                value=int(number),
                name=str(description.get("SegmentLabel") or f"segment {number}"),
                color=cielab_to_rgb(lab) if lab else DEFAULT_COLOR,
                terminology=terminology_of_segment(description),
            )
        )
    return infos
