"""Write a label map as a DICOM Segmentation (SEG) of its source CT series, with highdicom.

Each label becomes one segment (BINARY segmentation type, the form PACS and viewers read
most widely) with its name, SNOMED category and type, the algorithm that made it
(AUTOMATIC) and its colour as the recommended display CIELab value. Frame ``k`` of the
label map is written against the source instance on slice ``k``, so the SEG references
the CT slice by slice (and its series, study and frame of reference).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import highdicom as hd
import numpy as np
from pydicom.sr.codedict import codes

from .. import __version__
from ..errors import InputError
from ..io.atomic import atomic_path
from ..io.volume import Volume
from ..models.terminology import terminology_for
from .coding import TISSUE, rgb_to_cielab, to_coded_concept
from .labels import LabelInfo
from .source import SourceSeries, source_series_of

MANUFACTURER = "MedSegAI"
SEG_SERIES_NUMBER = 300


def write_dicom_seg(
    labels: np.ndarray,
    reference: Volume,
    label_infos: Sequence[LabelInfo],
    out_path: str | os.PathLike,
    algorithm_name: str,
    algorithm_version: str,
    series_number: int = SEG_SERIES_NUMBER,
    series_description: str = "MedSegAI segmentation",
) -> Path:
    """Write ``labels`` (``[k, j, i]`` on ``reference``'s grid) as a DICOM SEG file.

    Segments are numbered 1..n in the order of increasing label value (equal to the label
    values when those are 1..n, as the project's models write them).

    Args:
        labels: integer label map, 0 = background, same shape as ``reference.array``.
        reference: the CT volume, read from a DICOM series (``metadata["files"]``).
        label_infos: name, colour and terminology of every label value in ``labels``
            (without terminology: the project's codes for known names, else SCT "Tissue").
        out_path: the ``.dcm`` file to write (atomically).
        algorithm_name: the algorithm's name (e.g. the model name).
        algorithm_version: the algorithm's version (e.g. the model version).
        series_number: DICOM series number of the new SEG series.
        series_description: DICOM series description of the new SEG series.

    Returns:
        ``out_path``.

    Raises:
        InputError: the input was not DICOM, or a label value has no description.
        ValueError: ``labels`` does not match the reference grid.
    """
    labels = np.asarray(labels)
    if labels.shape != reference.array.shape:
        raise ValueError(f"label map shape {labels.shape} does not match the CT grid {reference.array.shape}")
    source = source_series_of(reference, purpose="DICOM SEG export")
    infos = _infos_for(labels, label_infos, reference)
    segmentation = build_segmentation(
        labels, source, infos, algorithm_name, algorithm_version, series_number, series_description
    )
    out_path = Path(out_path)
    with atomic_path(out_path) as temporary:
        segmentation.save_as(temporary)
    return out_path


def build_segmentation(
    labels: np.ndarray,
    source: SourceSeries,
    infos: Sequence[LabelInfo],
    algorithm_name: str,
    algorithm_version: str,
    series_number: int = SEG_SERIES_NUMBER,
    series_description: str = "MedSegAI segmentation",
) -> hd.seg.Segmentation:
    """The highdicom Segmentation for ``labels`` (slice ``k`` = ``source.datasets[k]``).

    ``infos`` must be sorted by value and cover every non-zero value of ``labels``.
    """
    algorithm = hd.AlgorithmIdentificationSequence(
        name=algorithm_name,
        version=algorithm_version,
        family=codes.cid7162.ArtificialIntelligence,
        source=MANUFACTURER,
    )
    descriptions = [
        _segment_description(number, info, algorithm) for number, info in enumerate(infos, start=1)
    ]
    segment_numbers = np.zeros(int(labels.max(initial=0)) + 1, dtype=np.uint16)
    for number, info in enumerate(infos, start=1):
        if info.value < segment_numbers.size:
            segment_numbers[info.value] = number
    frames = segment_numbers[labels]  # label value -> segment number, frames in slice order
    segmentation = hd.seg.Segmentation(
        source_images=source.datasets,
        pixel_array=frames,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions,
        series_instance_uid=hd.UID(),
        series_number=series_number,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer=MANUFACTURER,
        manufacturer_model_name=algorithm_name[:64],
        software_versions=f"medsegai {__version__}",
        device_serial_number="none",
        content_label="MEDSEGAI",
        content_description=f"{algorithm_name} {algorithm_version}"[:64],
        series_description=series_description,
    )
    return segmentation


def _infos_for(labels: np.ndarray, label_infos: Sequence[LabelInfo], reference: Volume) -> list[LabelInfo]:
    """The descriptions sorted by value; every value present in ``labels`` must have one."""
    by_value = {info.value: info for info in label_infos if info.value > 0}
    present = [int(v) for v in np.unique(labels) if v != 0]
    missing = [v for v in present if v not in by_value]
    if missing:
        raise InputError(
            f"{reference.metadata.get('source', 'label map')}: label values {missing} have no name "
            "in the labels; "
            "give a labels.json that describes every value"
        )
    if labels.size and labels.min() < 0:
        raise InputError("label map has negative values; a DICOM SEG needs labels 0 (background) and up")
    return [by_value[value] for value in sorted(by_value)]


def _segment_description(
    number: int, info: LabelInfo, algorithm: hd.AlgorithmIdentificationSequence
) -> hd.seg.SegmentDescription:
    terminology = info.terminology or terminology_for(info.name) or {}
    category = terminology.get("category") or TISSUE
    property_type = terminology.get("type") or TISSUE
    region = terminology.get("anatomic_region")
    description = hd.seg.SegmentDescription(
        segment_number=number,
        segment_label=info.name[:64],
        segmented_property_category=to_coded_concept(category),
        segmented_property_type=to_coded_concept(property_type),
        algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
        algorithm_identification=algorithm,
        tracking_uid=hd.UID(),
        tracking_id=info.name[:64],
        anatomic_regions=[to_coded_concept(region)] if region else None,
        display_color=rgb_to_cielab(info.color),
    )
    if terminology.get("modifier"):
        description.SegmentedPropertyTypeCodeSequence[0].SegmentedPropertyTypeModifierCodeSequence = [
            to_coded_concept(terminology["modifier"])
        ]
    return description
