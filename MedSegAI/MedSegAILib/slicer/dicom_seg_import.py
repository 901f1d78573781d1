"""Slicer side of DICOM SEG import: a segmentation node with names, colours and terminology.

Uses only MRML/VTK (no Qt), so it runs in Slicer and on slicer-core in tests. The engine
(:func:`MedSegAILib.dicom_out.read_dicom_seg`) places the SEG on its CT's grid and refuses a
SEG of another series; this module turns the result into a ``vtkMRMLSegmentationNode``
whose segments share one labelmap (as Slicer stores imported label maps).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import slicer
import vtk
from vtk.util import numpy_support

from ..dicom_out.labels import LabelInfo
from ..dicom_out.seg_import import read_dicom_seg
from ..io import read_volume
from ..io.volume import Volume
from ..models.terminology import slicer_terminology_string


def import_dicom_seg(
    seg_path: str | os.PathLike,
    reference: Volume | str | os.PathLike,
    node_name: Optional[str] = None,
    scene: Optional["slicer.vtkMRMLScene"] = None,
) -> "slicer.vtkMRMLSegmentationNode":
    """Load a DICOM SEG as a segmentation node on its CT's geometry.

    Args:
        seg_path: the DICOM SEG file.
        reference: the CT the SEG was made on: a :class:`Volume` read from its DICOM
            series, or the series folder / one of its files.
        node_name: the node's name (default: the SEG file's stem).
        scene: the MRML scene (default: ``slicer.mrmlScene``).

    Returns:
        The new segmentation node, one segment per DICOM segment.

    Raises:
        InputError: the SEG cannot be read or references another series than ``reference``.
    """
    volume = reference if isinstance(reference, Volume) else read_volume(Path(reference))
    imported = read_dicom_seg(seg_path, volume)
    return add_segmentation_node(
        imported.labels, volume, imported.label_infos, node_name or Path(seg_path).stem, scene=scene
    )


def add_segmentation_node(
    labels: np.ndarray,
    reference: Volume,
    label_infos: Sequence[LabelInfo],
    node_name: str,
    scene: Optional["slicer.vtkMRMLScene"] = None,
) -> "slicer.vtkMRMLSegmentationNode":
    """A segmentation node holding ``labels`` (``[k, j, i]`` on ``reference``'s grid).

    Each :class:`LabelInfo` becomes a segment with its label value, name, colour and
    terminology entry; all segments share one binary labelmap.
    """
    scene = scene or slicer.mrmlScene
    node = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", node_name)
    node.CreateDefaultDisplayNodes()
    labelmap = _oriented_image(labels, reference)
    segmentation = node.GetSegmentation()
    representation = slicer.vtkSegmentationConverter.GetBinaryLabelmapRepresentationName()
    segmentation.SetSourceRepresentationName(representation)
    segmentation.SetConversionParameter(  # later edits stay on the CT's voxel grid
        slicer.vtkSegmentationConverter.GetReferenceImageGeometryParameterName(),
        slicer.vtkSegmentationConverter.SerializeImageGeometry(labelmap),
    )
    for info in label_infos:
        segment = slicer.vtkSegment()
        segment.SetName(info.name)
        segment.SetColor(*(c / 255.0 for c in info.color))
        segment.SetLabelValue(int(info.value))
        segment.AddRepresentation(representation, labelmap)
        if info.terminology:
            segment.SetTag(slicer.vtkSegment.GetTerminologyEntryTagName(), slicer_terminology_string(info.terminology))
        segmentation.AddSegment(segment, f"segment_{info.value}")
    return node


def _oriented_image(labels: np.ndarray, reference: Volume) -> "slicer.vtkOrientedImageData":
    """The label map as vtkOrientedImageData with the reference's IJK-to-RAS geometry."""
    labels = np.ascontiguousarray(labels, dtype=np.uint8 if labels.max(initial=0) < 256 else np.uint16)
    image = slicer.vtkOrientedImageData()
    i, j, k = reference.shape_ijk
    image.SetDimensions(i, j, k)
    scalars = numpy_support.numpy_to_vtk(labels.ravel(), deep=True)  # [k, j, i] C order: i fastest, as VTK
    image.GetPointData().SetScalars(scalars)
    matrix = vtk.vtkMatrix4x4()
    for row, values in enumerate(reference.index_to_ras()):
        for column, value in enumerate(values):
            matrix.SetElement(row, column, float(value))
    image.SetImageToWorldMatrix(matrix)
    return image
