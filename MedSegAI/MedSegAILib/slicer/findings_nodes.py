"""CONTRACT ``findings.json`` (LPS) -> a markups point list and a table node (RAS).

Reads the keys ``medsegai detect`` writes (``detection.detector.Finding.to_json``): ``id``,
``score``, ``center``, ``diameter_mm`` (longest axial diameter), ``mean_diameter_mm``,
``volume_mm3``, ``lung_rads``, and with ``--uncertainty N`` the finding's ``uncertainty``
summary, of which the table shows ``mean_entropy`` and ``needs_review``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import vtk

from ..errors import InputError

TABLE_COLUMNS = (
    "ID",
    "R",
    "A",
    "S",
    "Diameter (mm)",
    "Mean diameter (mm)",
    "Volume (mm3)",
    "Score",
    "Lung-RADS",
    "Mean entropy",
    "Needs review",
)
_TEXT_COLUMNS = ("Lung-RADS", "Needs review")


@dataclass
class Finding:
    """One nodule finding, centre in RAS millimetres (converted from the file's LPS)."""

    id: int
    center_ras: tuple[float, float, float]
    diameter_mm: float
    mean_diameter_mm: float
    volume_mm3: float
    score: float
    lung_rads: str
    mean_entropy: float | None = None  # with --uncertainty; None also when the engine gives none
    needs_review: bool | None = None  # with --uncertainty


def lps_to_ras(point: Any) -> tuple[float, float, float]:
    """Convert an LPS point to RAS (negate x and y)."""
    x, y, z = (float(c) for c in point)
    return (-x, -y, z)


def _finding(entry: dict[str, Any]) -> Finding:
    uncertainty = entry.get("uncertainty") or {}
    mean_entropy = uncertainty.get("mean_entropy")
    needs_review = uncertainty.get("needs_review")
    return Finding(
        id=int(entry["id"]),
        center_ras=lps_to_ras(entry["center"]),
        diameter_mm=float(entry["diameter_mm"]),
        mean_diameter_mm=float(entry["mean_diameter_mm"]),
        volume_mm3=float(entry["volume_mm3"]),
        score=float(entry["score"]),
        lung_rads=str(entry["lung_rads"]) if entry.get("lung_rads") else "mass (no Lung-RADS)",
        mean_entropy=None if mean_entropy is None else float(mean_entropy),
        needs_review=None if needs_review is None else bool(needs_review),
    )


def read_findings_json(path: str | os.PathLike) -> list[Finding]:
    """Parse ``findings.json``; centres are converted from LPS to RAS.

    Raises:
        InputError: missing file, a coordinate system other than LPS, or malformed entries.
    """
    path = Path(path)
    try:
        payload = json.loads(path.read_text())
        if payload["coordinate_system"] != "LPS":
            raise ValueError(f"coordinate_system is {payload['coordinate_system']!r}, not 'LPS'")
        return [_finding(entry) for entry in payload["findings"]]
    except FileNotFoundError:
        raise InputError(f"{path}: findings file is missing; run detection again") from None
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise InputError(
            f"{path}: not a valid findings.json ({type(error).__name__}: {error}); run detection again"
        ) from None


def finding_label(finding: Finding) -> str:
    """The point label shown in the views, e.g. ``N1 0.93``."""
    return f"N{finding.id} {finding.score:.2f}"


def markups_from_findings(scene, findings: list[Finding], name: str):
    """A locked markups point list with one point per finding (label ``N<id> <score>``)."""
    node = scene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode", name)
    node.CreateDefaultDisplayNodes()
    for finding in findings:
        index = node.AddControlPoint(vtk.vtkVector3d(*finding.center_ras), finding_label(finding))
        node.SetNthControlPointDescription(
            index, f"diameter {finding.diameter_mm:.1f} mm, volume {finding.volume_mm3:.0f} mm3"
        )
        node.SetNthControlPointLocked(index, True)
    return node


def table_from_findings(scene, findings: list[Finding], name: str):
    """A table node with one row per finding (:data:`TABLE_COLUMNS`, centre in RAS)."""
    node = scene.AddNewNodeByClass("vtkMRMLTableNode", name)
    table = node.GetTable()
    arrays = []
    for column in TABLE_COLUMNS:
        array = (
            vtk.vtkIntArray()
            if column == "ID"
            else vtk.vtkStringArray()
            if column in _TEXT_COLUMNS
            else vtk.vtkDoubleArray()
        )
        array.SetName(column)
        table.AddColumn(array)
        arrays.append(array)
    for finding in findings:
        entropy = float("nan") if finding.mean_entropy is None else finding.mean_entropy
        review = "" if finding.needs_review is None else ("yes" if finding.needs_review else "no")
        values = (
            finding.id,
            *finding.center_ras,
            finding.diameter_mm,
            finding.mean_diameter_mm,
            finding.volume_mm3,
            finding.score,
            finding.lung_rads,
            entropy,
            review,
        )
        for array, value in zip(arrays, values):
            array.InsertNextValue(value)
    node.SetUseColumnTitleAsColumnHeader(True)
    node.SetLocked(True)
    node.Modified()
    return node
