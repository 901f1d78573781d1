"""Load a whole ``medsegai segment`` / ``detect`` output folder into MRML nodes."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..models.card import LabelInfo, read_labels_json
from ..models.terminology import terminology_for
from .findings_nodes import Finding, markups_from_findings, read_findings_json, table_from_findings
from .map_nodes import flagged_segments, map_volume_node
from .segmentation_nodes import segmentation_from_label_map

NODULE_COLOR = (255, 217, 51)  # one colour for every finding's segment


@dataclass
class SegmentOutputs:
    """Nodes made from a ``segment`` output folder."""

    segmentation: Any
    labels: list[LabelInfo]
    entropy: Any | None = None
    mutual_information: Any | None = None
    flagged: list[str] = field(default_factory=list)
    gradcam: dict[str, Any] = field(default_factory=dict)


@dataclass
class DetectOutputs:
    """Nodes made from a ``detect`` output folder."""

    findings: list[Finding]
    markups: Any
    table: Any
    nodules: Any
    gradcam: Any | None = None


def _gradcam_name(path: Path) -> str:
    return path.name[len("gradcam_") : -len(".nii.gz")].replace("_", " ")


def load_segment_outputs(outdir: str | os.PathLike, reference_volume_node, name: str) -> SegmentOutputs:
    """Turn ``segmentation.nii.gz`` + ``labels.json`` and any maps into nodes.

    Args:
        outdir: the folder ``medsegai segment`` wrote.
        reference_volume_node: the input volume node.
        name: base name of the new nodes (e.g. the volume's name).

    Returns:
        The new nodes; optional maps are ``None`` / empty when the folder lacks them.

    Raises:
        InputError: ``segmentation.nii.gz`` or ``labels.json`` is missing or malformed.
    """
    outdir = Path(outdir)
    label_path = outdir / "segmentation.nii.gz"
    if not label_path.exists():
        raise InputError(f"{label_path}: segmentation is missing; run the engine again")
    scene = reference_volume_node.GetScene()
    labels = read_labels_json(outdir / "labels.json")
    outputs = SegmentOutputs(
        segmentation_from_label_map(label_path, labels, reference_volume_node, f"{name} segmentation"), labels
    )
    entropy = outdir / "uncertainty_entropy.nii.gz"
    if entropy.exists():
        outputs.entropy = map_volume_node(entropy, scene, f"{name} entropy", "MedSegAI uncertainty")
    information = outdir / "uncertainty_mutual_information.nii.gz"
    if information.exists():
        outputs.mutual_information = map_volume_node(
            information, scene, f"{name} mutual information", "MedSegAI uncertainty"
        )
    if (outdir / "uncertainty.json").exists():
        outputs.flagged = flagged_segments(outdir / "uncertainty.json")
    for path in sorted(outdir.glob("gradcam_*.nii.gz")):
        segment = _gradcam_name(path)
        outputs.gradcam[segment] = map_volume_node(
            path, scene, f"{name} Grad-CAM {segment}", "MedSegAI heat", (0.0, 1.0)
        )
    return outputs


def load_detect_outputs(outdir: str | os.PathLike, reference_volume_node, name: str) -> DetectOutputs:
    """Turn ``findings.json`` + ``nodules.nii.gz`` (and ``gradcam_nodules``) into nodes.

    Returns:
        Markups (one point per finding), a findings table, a segmentation with one segment
        per finding (``nodule <id>``), and the Grad-CAM map when present.

    Raises:
        InputError: ``findings.json`` or ``nodules.nii.gz`` is missing or malformed.
    """
    outdir = Path(outdir)
    scene = reference_volume_node.GetScene()
    findings = read_findings_json(outdir / "findings.json")
    nodules_path = outdir / "nodules.nii.gz"
    if not nodules_path.exists():
        raise InputError(f"{nodules_path}: nodule label map is missing; run detection again")
    nodule = terminology_for("lung nodule") or {}
    labels = [LabelInfo(f.id, f"nodule {f.id}", NODULE_COLOR, nodule) for f in findings]
    outputs = DetectOutputs(
        findings=findings,
        markups=markups_from_findings(scene, findings, f"{name} findings"),
        table=table_from_findings(scene, findings, f"{name} findings table"),
        nodules=segmentation_from_label_map(nodules_path, labels, reference_volume_node, f"{name} nodules"),
    )
    gradcam = outdir / "gradcam_nodules.nii.gz"
    if gradcam.exists():
        outputs.gradcam = map_volume_node(
            gradcam, scene, f"{name} Grad-CAM nodules", "MedSegAI heat", (0.0, 1.0)
        )
    return outputs
