"""Standard terminology (SNOMED CT) for the structures MedSegAI segments.

The layout follows DICOM SEG / 3D Slicer: a category and a type, each a coded concept
``{"scheme": "SCT", "code": ..., "meaning": ...}``, optionally a type modifier.
"""

from __future__ import annotations

from typing import Any


def coded(code: str, meaning: str, scheme: str = "SCT") -> dict[str, str]:
    return {"scheme": scheme, "code": code, "meaning": meaning}


ANATOMICAL_STRUCTURE = coded("123037004", "Anatomical Structure")
MORPHOLOGICALLY_ALTERED_STRUCTURE = coded("49755003", "Morphologically Altered Structure")

TERMINOLOGY: dict[str, dict[str, Any]] = {
    "left lung": {"category": ANATOMICAL_STRUCTURE, "type": coded("44029006", "Left lung")},
    "right lung": {"category": ANATOMICAL_STRUCTURE, "type": coded("3341006", "Right lung")},
    "lung": {"category": ANATOMICAL_STRUCTURE, "type": coded("39607008", "Lung")},
    "lung nodule": {"category": MORPHOLOGICALLY_ALTERED_STRUCTURE, "type": coded("27925004", "Nodule")},
    "airway": {"category": ANATOMICAL_STRUCTURE, "type": coded("89187006", "Airway structure")},
    "trachea": {"category": ANATOMICAL_STRUCTURE, "type": coded("44567001", "Trachea")},
}


def terminology_for(name: str) -> dict[str, Any] | None:
    """The terminology for a structure name, or ``None`` if it is not known."""
    return TERMINOLOGY.get(name.strip().lower())


def slicer_terminology_string(terminology: dict[str, Any]) -> str:
    """Slicer's ``Segment.SetTag("TerminologyEntry", ...)`` string for a terminology dict.

    Parts are separated by ``~``; a coded concept is ``scheme^code^meaning`` (``^^`` when empty).
    """

    def part(concept: dict[str, str] | None) -> str:
        if not concept:
            return "^^"
        return f"{concept['scheme']}^{concept['code']}^{concept['meaning']}"

    return "~".join(
        [
            "Segmentation category and type - 3D Slicer General Anatomy list",
            part(terminology.get("category")),
            part(terminology.get("type")),
            part(terminology.get("modifier")),
            "Anatomic codes - DICOM master list",
            part(terminology.get("anatomic_region")),
            part(terminology.get("anatomic_region_modifier")),
        ]
    )
