"""Conversions between the project's terminology dicts / RGB colours and DICOM codes / CIELab.

A terminology dict is ``{"category": concept, "type": concept, "modifier": concept,
"anatomic_region": concept}`` with ``concept = {"scheme", "code", "meaning"}`` (see
``models/terminology.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from highdicom.color import CIELabColor
from highdicom.sr import CodedConcept
from pydicom.dataset import Dataset

from ..models.terminology import coded

TISSUE = coded("85756007", "Tissue")  # fallback category and type for segments without terminology


def to_coded_concept(concept: dict[str, str]) -> CodedConcept:
    """A highdicom coded concept from ``{"scheme", "code", "meaning"}``."""
    return CodedConcept(
        value=str(concept["code"]), scheme_designator=str(concept["scheme"]), meaning=str(concept["meaning"])
    )


def from_code_item(item: Dataset) -> dict[str, str]:
    """``{"scheme", "code", "meaning"}`` from a DICOM code sequence item."""
    value = item.get("CodeValue") or item.get("LongCodeValue") or item.get("URNCodeValue")
    return coded(str(value), str(item.CodeMeaning), scheme=str(item.CodingSchemeDesignator))


def first_code(sequence: Sequence[Dataset] | None) -> dict[str, str] | None:
    """The first item of a code sequence as a concept dict, or ``None`` if empty/absent."""
    return from_code_item(sequence[0]) if sequence else None


def rgb_to_cielab(color: Sequence[float]) -> CIELabColor:
    """DICOM's recommended display CIELab value for an RGB colour (0-255)."""
    r, g, b = (min(max(float(c), 0.0), 255.0) for c in color[:3])
    return CIELabColor.from_rgb(r, g, b)


def cielab_to_rgb(value: Sequence[int]) -> tuple[int, int, int]:
    """RGB (0-255) for a DICOM ``RecommendedDisplayCIELabValue`` (clipped to the RGB gamut)."""
    return tuple(int(c) for c in CIELabColor.from_dicom_value(value).to_rgb(clip=True))  # type: ignore[return-value]


def terminology_of_segment(description: Dataset) -> dict[str, Any]:
    """The terminology dict of a DICOM segment description (category, type, modifier, region)."""
    terminology: dict[str, Any] = {
        "category": first_code(description.get("SegmentedPropertyCategoryCodeSequence")),
        "type": first_code(description.get("SegmentedPropertyTypeCodeSequence")),
    }
    type_items = description.get("SegmentedPropertyTypeCodeSequence") or []
    if type_items and type_items[0].get("SegmentedPropertyTypeModifierCodeSequence"):
        terminology["modifier"] = first_code(type_items[0].SegmentedPropertyTypeModifierCodeSequence)
    if description.get("AnatomicRegionSequence"):
        terminology["anatomic_region"] = first_code(description.AnatomicRegionSequence)
    return {key: value for key, value in terminology.items() if value}
