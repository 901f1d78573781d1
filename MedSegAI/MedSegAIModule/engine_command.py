"""The ``medsegai`` command lines the module runs (the CONTRACT), built from the settings."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path

from .parameters import Settings

MODULE_DIR = Path(__file__).resolve().parents[1]  # holds MedSegAILib


def engine_python() -> str:
    """The interpreter for the engine: ``PythonSlicer`` inside Slicer, else this Python."""
    return shutil.which("PythonSlicer") or sys.executable


def engine_environment(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The child's environment: ``MedSegAILib`` importable, unbuffered output, no tracebacks."""
    env = dict(os.environ if base is None else base)
    paths = [str(MODULE_DIR)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env["PYTHONUNBUFFERED"] = "1"
    env.pop("MEDSEGAI_DEBUG", None)
    return env


def _run_options(settings: Settings) -> list[str]:
    """Options that `segment` and `detect` share: ``--device``, ``--model``, ``--uncertainty``, ``--fast``."""
    options = ["--device", settings.device]
    if settings.model:
        options += ["--model", settings.model]
    if settings.uncertainty_samples > 0:
        options += ["--uncertainty", str(settings.uncertainty_samples)]
    if settings.fast:
        options.append("--fast")
    return options


def _dicom_out(dicom_out: Path | None) -> list[str]:
    return ["--dicom-out", str(dicom_out)] if dicom_out is not None else []


def segment_command(
    python: str, input_path: Path, outdir: Path, settings: Settings, dicom_out: Path | None = None
) -> list[str]:
    """``medsegai segment INPUT -o OUTDIR`` with the model, device, uncertainty, fast and Grad-CAM options.

    Args:
        python: the engine's interpreter.
        input_path: the input file, or the DICOM series folder when ``dicom_out`` is given.
        outdir: the output folder.
        settings: the panel's settings.
        dicom_out: where ``--dicom-out`` writes the DICOM SEG (``None``: no DICOM output).
    """
    command = [
        python,
        "-m",
        "MedSegAILib",
        "segment",
        str(input_path),
        "-o",
        str(outdir),
        *_run_options(settings),
    ]
    if settings.gradcam_target:
        command += ["--gradcam", settings.gradcam_target]
    return command + _dicom_out(dicom_out)


def detect_command(
    python: str,
    input_path: Path,
    outdir: Path,
    settings: Settings,
    gradcam: bool = False,
    dicom_out: Path | None = None,
) -> list[str]:
    """``medsegai detect INPUT -o OUTDIR`` with the model, device, uncertainty, fast and threshold options.

    Args:
        gradcam: add ``--gradcam`` (one map for all findings).
        dicom_out: where ``--dicom-out`` writes the findings' DICOM SEG and SR (``None``: none).
        Others as for :func:`segment_command`.
    """
    command = [
        python,
        "-m",
        "MedSegAILib",
        "detect",
        str(input_path),
        "-o",
        str(outdir),
        *_run_options(settings),
        "--threshold",
        f"{settings.threshold:g}",
    ]
    if gradcam:
        command.append("--gradcam")
    return command + _dicom_out(dicom_out)


def export_command(python: str, label_path: Path, labels_path: Path, settings: Settings) -> list[str]:
    """``medsegai export-stl LABELMAP -o DIR`` with format, coordinates, smoothing, decimation."""
    return [
        python,
        "-m",
        "MedSegAILib",
        "export-stl",
        str(label_path),
        "-o",
        settings.export_folder,
        "--labels",
        str(labels_path),
        "--format",
        settings.export_format,
        "--coords",
        settings.export_coords,
        "--smooth",
        str(settings.smoothing),
        "--decimate",
        str(settings.decimation),
    ]
