"""CONTRACT ``findings.json`` (LPS) -> a markups point list and a table node (RAS)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import vtk

from ..errors import InputError

TABLE_COLUMNS = ("ID", "R", "A", "S", "Diameter (mm)", "Volume (mm3)", "Score", "Lung-RADS", "Uncertainty")
_LUNG_RADS_KEYS = ("lung_rads", "lungrads", "lung_rads_category")


@dataclass
class Finding:
    """One nodule finding, centre in RAS millimetres (converted from the file's LPS)."""

    id: int
    center_ras: tuple[float, float, float]
    diameter_mm: float
    volume_mm3: float
    score: float
    lung_rads: str = ""
    uncertainty: Optional[float] = None


def lps_to_ras(point: Any) -> tuple[float, float, float]:
    """Convert an LPS point to RAS (negate x and y)."""
    x, y, z = (float(c) for c in point)
    return (-x, -y, z)


def _lung_rads(entry: dict[str, Any]) -> str:
    for key in entry:
        if key.lower().replace("-", "_") in _LUNG_RADS_KEYS and entry[key] is not None:
            return str(entry[key])
    return ""


def read_findings_json(path: str | os.PathLike) -> list[Finding]:
    """Parse ``findings.json``; centres are converted from LPS to RAS.

    Raises:
        InputError: missing file, other coordinate system, or malformed entries.
    """
    path = Path(path)
    try:
        payload = json.loads(path.read_text())
        system = str(payload.get("coordinate_system", "LPS")).upper()
        if system not in ("LPS", "RAS"):
            raise ValueError(f"unknown coordinate_system {system!r}")
        findings = []
        for entry in payload["findings"]:
            center = [float(c) for c in entry["center"]]
            uncertainty = entry.get("uncertainty")
            findings.append(
                Finding(
                    id=int(entry["id"]),
                    center_ras=lps_to_ras(center) if system == "LPS" else tuple(center),
                    diameter_mm=float(entry.get("diameter_mm", float("nan"))),
                    volume_mm3=float(entry.get("volume_mm3", float("nan"))),
                    score=float(entry["score"]),
                    lung_rads=_lung_rads(entry),
                    uncertainty=float(uncertainty) if isinstance(uncertainty, (int, float)) else None,
                )
            )
        return findings
    except FileNotFoundError:
        raise InputError(f"{path}: findings file is missing; run detection again") from None
    except (ValueError, KeyError, TypeError) as error:
        raise InputError(f"{path}: not a valid findings.json ({error}); run detection again") from None


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
        array = vtk.vtkIntArray() if column == "ID" else vtk.vtkStringArray() if column == "Lung-RADS" else vtk.vtkDoubleArray()
        array.SetName(column)
        table.AddColumn(array)
        arrays.append(array)
    for finding in findings:
        uncertainty = float("nan") if finding.uncertainty is None else finding.uncertainty
        values = (finding.id, *finding.center_ras, finding.diameter_mm, finding.volume_mm3, finding.score,
                  finding.lung_rads, uncertainty)
        for array, value in zip(arrays, values):
            array.InsertNextValue(value)
    node.SetUseColumnTitleAsColumnHeader(True)
    node.SetLocked(True)
    node.Modified()
    return node
