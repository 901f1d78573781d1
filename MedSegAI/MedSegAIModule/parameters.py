"""The module's settings as one dataclass, stored in a parameter node saved with the scene."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

VOLUME_ROLE = "InputVolume"
PARAMETER_PREFIX = "MedSegAI."


@dataclass
class Settings:
    """Everything the panel lets the user choose (the input volume is a node reference)."""

    model: str = ""  # "" = the engine's default (built-in chest CT model)
    device: str = "auto"
    fast: bool = False
    uncertainty_samples: int = 0
    gradcam_target: str = ""
    threshold: float = (
        0.5  # detect's score threshold; the engine's default (detection.detector.DEFAULT_THRESHOLD)
    )
    dicom_export: bool = False  # with Segment / Detect, also write DICOM SEG / SR (input loaded from DICOM)
    dicom_folder: str = ""
    export_folder: str = ""
    export_format: str = "stl"
    export_coords: str = "lps"
    smoothing: int = 20
    decimation: float = 0.0


def _parse(text: str, kind: Any) -> Any:
    if kind in (bool, "bool"):
        return text == "true"
    if kind in (int, "int"):
        return int(text)
    if kind in (float, "float"):
        return float(text)
    return text


def _format(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def write_settings(parameter_node, settings: Settings, volume_node: Any | None = None) -> None:
    """Store ``settings`` (and the input volume as a node reference) in ``parameter_node``.

    Args:
        parameter_node: a ``vtkMRMLScriptedModuleNode``.
        settings: the values to store.
        volume_node: the input volume; ``None`` clears the reference.
    """
    was_modifying = parameter_node.StartModify()
    for item in fields(Settings):
        parameter_node.SetParameter(PARAMETER_PREFIX + item.name, _format(getattr(settings, item.name)))
    parameter_node.SetNodeReferenceID(VOLUME_ROLE, volume_node.GetID() if volume_node is not None else None)
    parameter_node.EndModify(was_modifying)


def read_settings(parameter_node) -> Settings:
    """The settings stored in ``parameter_node``; missing or unreadable values keep defaults."""
    values = {}
    for item in fields(Settings):
        text = parameter_node.GetParameter(PARAMETER_PREFIX + item.name)
        if not text:
            continue
        try:
            values[item.name] = _parse(text, item.type)
        except ValueError:
            continue
    return Settings(**values)


def input_volume(parameter_node) -> Any | None:
    """The input volume node referenced by ``parameter_node``, or ``None``."""
    return parameter_node.GetNodeReference(VOLUME_ROLE)


def job_settings(settings: Settings, from_dicom: bool) -> Settings:
    """The settings a job runs with: DICOM export only for a volume loaded from DICOM.

    The panel greys the DICOM export out for other volumes but keeps the user's choice, so
    it applies again when a DICOM volume is selected.
    """
    return replace(settings, dicom_export=settings.dicom_export and from_dicom)
