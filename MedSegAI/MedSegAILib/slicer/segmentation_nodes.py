"""CONTRACT label maps (``segmentation.nii.gz`` + ``labels.json``) <-> segmentation nodes."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np
import slicer
import vtk

from ..errors import InputError
from ..io import write_label_map
from ..models.terminology import slicer_terminology_string, terminology_for
from .volume_nodes import read_output_image, set_node_geometry, volume_from_node


@dataclass
class LabelInfo:
    """One entry of ``labels.json``: label value, name, colour (0..1 RGB), terminology."""

    value: int
    name: str
    color: tuple[float, float, float]
    terminology: Optional[dict[str, Any]] = field(default=None)


def _unit_color(color: Any) -> tuple[float, float, float]:
    rgb = [float(c) for c in (color or (0.5, 0.5, 0.5))][:3]
    if any(c > 1.0 for c in rgb):
        rgb = [c / 255.0 for c in rgb]
    return (rgb[0], rgb[1], rgb[2])


def read_labels_json(path: str | os.PathLike) -> list[LabelInfo]:
    """Parse ``labels.json`` (colours given as 0..255 or 0..1 are both accepted).

    Raises:
        InputError: the file is missing or not in the CONTRACT layout.
    """
    path = Path(path)
    try:
        entries = json.loads(path.read_text())["labels"]
        return [
            LabelInfo(int(e["value"]), str(e["name"]), _unit_color(e.get("color")), e.get("terminology"))
            for e in entries
        ]
    except FileNotFoundError:
        raise InputError(f"{path}: labels file is missing; run the engine again") from None
    except (ValueError, KeyError, TypeError) as error:
        raise InputError(f"{path}: not a valid labels.json ({error}); run the engine again") from None


def label_map_node(path: str | os.PathLike, scene, name: str) -> "slicer.vtkMRMLLabelMapVolumeNode":
    """Load a label map file into a new labelmap volume node with its exact geometry."""
    volume = read_output_image(path)
    node = scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode", name)
    set_node_geometry(node, volume.with_array(np.rint(volume.array).astype(np.int32)))
    return node


def segmentation_from_label_map(
    label_path: str | os.PathLike,
    labels: list[LabelInfo],
    reference_volume_node,
    name: str,
) -> "slicer.vtkMRMLSegmentationNode":
    """Create a segmentation node from a label map on the reference volume's grid.

    Every label in ``labels`` becomes a segment with its name, colour and terminology tag,
    also when it has no voxels (so it can be painted in Segment Editor). Values in the map
    that ``labels`` does not name become ``label_<value>``.

    Args:
        label_path: the label map file (e.g. ``segmentation.nii.gz``).
        labels: names and colours, e.g. from :func:`read_labels_json`.
        reference_volume_node: the input volume; its geometry is the segmentation's reference.
        name: the new node's name.

    Returns:
        The segmentation node (binary labelmap representation, display nodes created).

    Raises:
        InputError: the label map cannot be read or fails to import.
    """
    scene = reference_volume_node.GetScene()
    labelmap = label_map_node(label_path, scene, name + " labels")
    try:
        segmentation_node = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", name)
        segmentation_node.CreateDefaultDisplayNodes()
        segmentation_node.SetReferenceImageGeometryParameterFromVolumeNode(reference_volume_node)
        if not slicer.vtkSlicerSegmentationsModuleLogic.ImportLabelmapToSegmentationNode(labelmap, segmentation_node, ""):
            scene.RemoveNode(segmentation_node)
            raise InputError(f"{label_path}: the label map could not be imported as segments")
    finally:
        scene.RemoveNode(labelmap)
    _describe_segments(segmentation_node, labels)
    return segmentation_node


def _describe_segments(segmentation_node, labels: list[LabelInfo]) -> None:
    segmentation = segmentation_node.GetSegmentation()
    by_value = {}
    for index in range(segmentation.GetNumberOfSegments()):
        segment = segmentation.GetNthSegment(index)
        by_value[segment.GetLabelValue()] = segment
    for info in labels:
        segment = by_value.pop(info.value, None)
        if segment is None:
            segment_id = segmentation.AddEmptySegment(info.name, info.name, list(info.color))
            segment = segmentation.GetSegment(segment_id)
        segment.SetName(info.name)
        segment.SetColor(*info.color)
        segment.SetLabelValue(info.value)
        terminology = info.terminology or terminology_for(info.name)
        if terminology:
            segment.SetTag(segment.GetTerminologyEntryTagName(), slicer_terminology_string(terminology))
    for value, segment in by_value.items():
        segment.SetName(f"label_{value}")


def write_segmentation_label_map(
    segmentation_node,
    reference_volume_node,
    label_path: str | os.PathLike,
    labels_path: str | os.PathLike,
) -> list[LabelInfo]:
    """Write a (possibly edited) segmentation node as a CONTRACT label map + ``labels.json``.

    Segments get label values 1, 2, ... in segment order, on the reference volume's grid.

    Returns:
        The labels written.

    Raises:
        InputError: the segmentation has no segments.
    """
    segmentation = segmentation_node.GetSegmentation()
    count = segmentation.GetNumberOfSegments()
    if count == 0:
        raise InputError(f"{segmentation_node.GetName()}: the segmentation has no segments; segment first")
    scene = reference_volume_node.GetScene()
    segment_ids = vtk.vtkStringArray()
    for index in range(count):
        segment_ids.InsertNextValue(segmentation.GetNthSegmentID(index))
    labelmap = scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode", segmentation_node.GetName() + " export")
    try:
        slicer.vtkSlicerSegmentationsModuleLogic.ExportSegmentsToLabelmapNode(
            segmentation_node, segment_ids, labelmap, reference_volume_node
        )
        exported = volume_from_node(labelmap)
    finally:
        scene.RemoveNode(labelmap)
    reference = volume_from_node(reference_volume_node)
    labels = [
        LabelInfo(index + 1, segmentation.GetNthSegment(index).GetName(), tuple(segmentation.GetNthSegment(index).GetColor()))
        for index in range(count)
    ]
    write_label_map(exported.array, reference, label_path)
    payload = {
        "labels": [
            {"value": info.value, "name": info.name, "color": [round(255 * c) for c in info.color],
             **({"terminology": terminology_for(info.name)} if terminology_for(info.name) else {})}
            for info in labels
        ]
    }
    Path(labels_path).write_text(json.dumps(payload, indent=2))
    return labels

