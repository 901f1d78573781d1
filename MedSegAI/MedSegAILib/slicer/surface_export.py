"""Surfaces through 3D Slicer's own path: label map -> segmentation -> closed surface -> STL.

Uses MRML and the Segmentations module logic (no Qt), so it runs in Slicer and on
slicer-core. The engine's :class:`~MedSegAILib.mesh.MeshOptions` are mapped onto Slicer's
conversion parameters: ``Smoothing factor = -log10(passband) / 4`` (Slicer runs a fixed
number of windowed-sinc iterations, :data:`SLICER_SMOOTHING_ITERATIONS`; the engine's
``smoothing_iterations = 0`` turns smoothing off) and
``Decimation factor = decimate`` (Slicer decimates with vtkDecimatePro before smoothing,
the engine with quadric decimation after it, so decimated meshes differ in detail).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import slicer
import vtk

from ..io import Volume
from ..mesh.export import mesh_file_name
from ..mesh.options import MeshOptions
from .volume_nodes import set_node_geometry

SLICER_SMOOTHING_ITERATIONS = 40
"""Windowed-sinc iterations of Slicer's closed-surface conversion (slicer-core 5.13: the engine
with this many iterations reproduces Slicer's vertices to 1e-5 mm)."""

LabelNames = Mapping[int, tuple[str, tuple[int, int, int] | None]]


def slicer_conversion_parameters(options: MeshOptions) -> dict[str, str]:
    """Slicer's closed-surface conversion parameters equivalent to ``options``."""
    smoothing = 0.0 if options.smoothing_iterations == 0 else -math.log10(options.passband) / 4.0
    return {
        "Smoothing factor": f"{max(smoothing, 0.0):.6g}",
        "Decimation factor": f"{options.decimate:.6g}",
        "Conversion method": "0",  # vtkDiscreteFlyingEdges3D, as the engine
        "Compute surface normals": "1",
    }


def segmentation_from_labels(
    scene: slicer.vtkMRMLScene, labels: np.ndarray, reference: Volume, label_names: LabelNames
) -> slicer.vtkMRMLSegmentationNode:
    """Import an integer label map on ``reference``'s grid as a segmentation node.

    Segments are named and coloured from ``label_names`` (``label_<value>`` otherwise).

    Args:
        scene: the MRML scene (``slicer.mrmlScene`` inside Slicer).
        labels: ``[k, j, i]`` integer label map.
        reference: grid geometry (LPS).
        label_names: ``{value: (name, (r, g, b))}``.

    Returns:
        The segmentation node (the temporary label map node is removed).

    Raises:
        RuntimeError: Slicer could not import the label map.
    """
    logic = _segmentations_logic(scene)
    labelmap_node = scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode")
    try:
        set_node_geometry(labelmap_node, reference.with_array(np.ascontiguousarray(labels, dtype=np.int32)))
        segmentation_node = scene.AddNewNodeByClass("vtkMRMLSegmentationNode")
        segmentation_node.CreateDefaultDisplayNodes()
        if not logic.ImportLabelmapToSegmentationNode(labelmap_node, segmentation_node):
            raise RuntimeError("Slicer could not import the label map into a segmentation")
    finally:
        scene.RemoveNode(labelmap_node)
    segmentation = segmentation_node.GetSegmentation()
    for index in range(segmentation.GetNumberOfSegments()):
        segment = segmentation.GetNthSegment(index)
        value = segment.GetLabelValue()
        name, color = label_names.get(value, (f"label_{value}", None))
        segment.SetName(name)
        if color is not None:
            segment.SetColor(*(c / 255.0 for c in color))
    return segmentation_node


def export_surfaces_with_slicer(
    scene: slicer.vtkMRMLScene,
    labels: np.ndarray,
    reference: Volume,
    label_names: LabelNames,
    out_dir: str | os.PathLike,
    options: MeshOptions,
) -> dict[int, Path]:
    """Write one STL per segment through Slicer's closed-surface representation and segment export.

    Files are named as the engine names them (``<name with spaces as _>.stl``).

    Args:
        scene: the MRML scene, with the Segmentations module logic able to attach to it.
        labels: ``[k, j, i]`` integer label map on ``reference``'s grid.
        reference: grid geometry (LPS).
        label_names: ``{value: (name, (r, g, b))}``.
        out_dir: destination folder (created).
        options: smoothing, decimation and ``coords`` (LPS or RAS vertices); STL only.

    Returns:
        ``{label value: STL file}``.

    Raises:
        RuntimeError: Slicer failed to build or export the surfaces.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    segmentation_node = segmentation_from_labels(scene, labels, reference, label_names)
    try:
        segmentation = segmentation_node.GetSegmentation()
        for name, value in slicer_conversion_parameters(options).items():
            segmentation.SetConversionParameter(name, value)
        if not segmentation_node.CreateClosedSurfaceRepresentation():
            raise RuntimeError("Slicer could not create the closed surface representation")
        segment_ids = vtk.vtkStringArray()
        segmentation.GetSegmentIDs(segment_ids)
        exported = _segmentations_logic(scene).ExportSegmentsClosedSurfaceRepresentationToFiles(
            str(out_dir), segmentation_node, segment_ids, "STL", options.coords == "lps", 1.0, False
        )
        if not exported:
            raise RuntimeError(f"{out_dir}: Slicer could not export the surfaces")
        return _rename_exports(segmentation_node, out_dir)
    finally:
        scene.RemoveNode(segmentation_node)


def _rename_exports(segmentation_node: slicer.vtkMRMLSegmentationNode, out_dir: Path) -> dict[int, Path]:
    """Slicer writes ``<node name>_<segment name>.stl``; give each the engine's file name."""
    segmentation = segmentation_node.GetSegmentation()
    files = {}
    for index in range(segmentation.GetNumberOfSegments()):
        segment = segmentation.GetNthSegment(index)
        written = out_dir / f"{segmentation_node.GetName()}_{segment.GetName()}.stl"
        if not written.is_file():
            raise RuntimeError(
                f"{written}: Slicer did not write the surface of segment {segment.GetName()!r}"
            )
        target = out_dir / mesh_file_name(segment.GetName(), "stl")
        os.replace(written, target)
        files[segment.GetLabelValue()] = target
    return files


def _segmentations_logic(scene: slicer.vtkMRMLScene) -> slicer.vtkSlicerSegmentationsModuleLogic:
    """The Segmentations module logic attached to ``scene`` (registers the converter rules)."""
    logic = slicer.vtkSlicerSegmentationsModuleLogic()
    logic.SetMRMLScene(scene)
    return logic
