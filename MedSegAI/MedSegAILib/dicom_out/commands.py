"""``--dicom-out DIR`` for `segment` and `detect`: DICOM SEG / SR next to the CONTRACT outputs.

`segment` writes ``DIR/segmentation_seg.dcm``; `detect` writes ``DIR/nodules_seg.dcm`` (one
segment per finding, "nodule <id>") when there are findings, and ``DIR/findings_sr.dcm``
(TID 1500), which references the CT series and that SEG. The input must be a DICOM series;
this is checked before the model runs.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from ..io.output_dir import OutputDir
from ..io.volume import Volume
from ..models.terminology import terminology_for
from .labels import LabelInfo
from .seg import write_dicom_seg
from .source import source_series_of
from .sr import write_dicom_sr

SEGMENTATION_SEG = "segmentation_seg.dcm"
NODULES_SEG = "nodules_seg.dcm"
FINDINGS_SR = "findings_sr.dcm"
NODULE_COLOR = (255, 215, 0)


def add_dicom_out_argument(parser: argparse.ArgumentParser, what: str) -> None:
    """Add ``--dicom-out DIR`` to a subcommand; ``what`` says which objects it writes."""
    parser.add_argument(
        "--dicom-out",
        metavar="DIR",
        default=None,
        help=f"also write {what} into DIR (the input must be a DICOM series); see docs/dicom.md",
    )


def check_dicom_out(dicom_out: str | None, volume: Volume) -> None:
    """Refuse ``--dicom-out`` for a non-DICOM input before any model is loaded.

    Raises:
        InputError: ``dicom_out`` is set and ``volume`` was not read from a usable DICOM series.
    """
    if dicom_out:
        source_series_of(volume, purpose="--dicom-out")


def write_segmentation_dicom(
    dicom_out: str | os.PathLike,
    labels: np.ndarray,
    volume: Volume,
    label_entries: Iterable[dict[str, Any]],
    model_name: str,
    model_version: str,
) -> Path:
    """`segment --dicom-out`: the label map as a DICOM SEG; returns its path."""
    infos = [LabelInfo.from_json(entry) for entry in label_entries]
    with OutputDir(dicom_out) as out:
        write_dicom_seg(labels, volume, infos, out.path(SEGMENTATION_SEG), model_name, model_version)
    return Path(dicom_out) / SEGMENTATION_SEG


def write_findings_dicom(
    dicom_out: str | os.PathLike,
    findings: dict[str, Any],
    nodules: np.ndarray,
    volume: Volume,
    model_name: str,
    model_version: str,
) -> list[Path]:
    """`detect --dicom-out`: a SEG of the findings (if any) and the SR that references it."""
    written = []
    with OutputDir(dicom_out) as out:
        seg_path = None
        ids = sorted(int(f["id"]) for f in findings.get("findings", []))
        if ids:
            infos = [
                LabelInfo(i, f"nodule {i}", NODULE_COLOR, terminology_for("lung nodule") or {}) for i in ids
            ]
            seg_path = write_dicom_seg(
                nodules,
                volume,
                infos,
                out.path(NODULES_SEG),
                model_name,
                model_version,
                series_description="MedSegAI nodule findings",
            )
            written.append(NODULES_SEG)
        write_dicom_sr(
            findings, volume, out.path(FINDINGS_SR), model_name, model_version, segmentation_path=seg_path
        )
        written.append(FINDINGS_SR)
    return [Path(dicom_out) / name for name in written]
