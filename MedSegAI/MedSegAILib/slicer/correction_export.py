"""Save a segmentation edited in Segment Editor as a corrections case (training data).

When a model's segmentation is loaded, :func:`remember_prediction` keeps a copy of it as the
model made it (a hidden label map node, referenced from the segmentation node, saved with
the scene) and which model made it. :func:`save_correction` later writes the edited
segmentation (through :func:`~.segmentation_nodes.write_segmentation_label_map`) with its CT
into the corrections store, with the per-segment changes against that copy.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import slicer

from ..models.card import LabelInfo
from ..training.corrections import CorrectionCase, add_correction, default_store
from .dicom_source import instance_uids
from .segmentation_nodes import label_map_node, write_segmentation_label_map
from .volume_nodes import read_output_image, volume_from_node

ORIGINAL_ROLE = "MedSegAIOriginalPrediction"
ORIGINAL_LABELS_ATTRIBUTE = "MedSegAI.originalLabels"
MODEL_ATTRIBUTE = "MedSegAI.model"


def remember_prediction(segmentation_node, volume_node, model: Mapping[str, Any] | None = None):
    """Keep the segmentation as it is now (the model's prediction) for later change statistics.

    Args:
        segmentation_node: the segmentation just loaded from the engine's output.
        volume_node: its CT volume node.
        model: the model that made it (``name``, ``version``, ``weights_sha256``), if known.

    Returns:
        The hidden label map node holding the prediction.
    """
    scene = volume_node.GetScene()
    with tempfile.TemporaryDirectory(prefix="medsegai-prediction-") as folder:
        label_path = Path(folder) / "labels.nii.gz"
        labels = write_segmentation_label_map(
            segmentation_node, volume_node, label_path, Path(folder) / "labels.json"
        )
        node = label_map_node(label_path, scene, f"{segmentation_node.GetName()} original prediction")
    node.SetHideFromEditors(True)
    node.SetAttribute(ORIGINAL_LABELS_ATTRIBUTE, json.dumps([info.to_json() for info in labels]))
    segmentation_node.SetNodeReferenceID(ORIGINAL_ROLE, node.GetID())
    if model:
        segmentation_node.SetAttribute(MODEL_ATTRIBUTE, json.dumps(dict(model)))
    return node


def save_correction(
    segmentation_node,
    volume_node,
    store: str | os.PathLike | None = None,
    author: str | None = None,
) -> CorrectionCase:
    """Write the (edited) segmentation and its CT as a new case of the corrections store.

    Args:
        segmentation_node: the segmentation, as edited in Segment Editor.
        volume_node: the CT it was drawn on; the label map is written on its grid.
        store: the store folder (default: :func:`~MedSegAILib.training.corrections.default_store`).
        author: who corrected it (default: the login name).

    Returns:
        The stored case; its ``record["changes"]`` compares with the remembered prediction
        (``None`` when :func:`remember_prediction` was not called for this segmentation).

    Raises:
        InputError: the segmentation has no segments, or the CT's grid changed since the
            prediction was remembered.
    """
    with tempfile.TemporaryDirectory(prefix="medsegai-correction-") as folder:
        label_path = Path(folder) / "labels.nii.gz"
        labels = write_segmentation_label_map(
            segmentation_node, volume_node, label_path, Path(folder) / "labels.json"
        )
        corrected = read_output_image(label_path)
    corrected.metadata["source"] = segmentation_node.GetName()
    image = volume_from_node(volume_node)
    original_node = segmentation_node.GetNodeReference(ORIGINAL_ROLE)
    original, original_labels = None, []
    if original_node is not None:
        original = volume_from_node(original_node)
        original.metadata["source"] = original_node.GetName()
        original_labels = [
            LabelInfo.from_json(e)
            for e in json.loads(original_node.GetAttribute(ORIGINAL_LABELS_ATTRIBUTE) or "[]")
        ]
    model_text = segmentation_node.GetAttribute(MODEL_ATTRIBUTE)
    return add_correction(
        store if store is not None else default_store(),
        image,
        corrected,
        labels,
        original=original,
        original_labels=original_labels,
        model=json.loads(model_text) if model_text else None,
        source=volume_source(volume_node),
        author=author,
    )


def volume_source(volume_node) -> dict[str, Any]:
    """Where a volume node came from: its name, file, and DICOM series UID and instance count."""
    source: dict[str, Any] = {"node": volume_node.GetName()}
    storage = volume_node.GetStorageNode()
    if storage is not None and storage.GetFileName():
        source["path"] = storage.GetFileName()
    hierarchy = slicer.vtkMRMLSubjectHierarchyNode.GetSubjectHierarchyNode(volume_node.GetScene())
    item = hierarchy.GetItemByDataNode(volume_node) if hierarchy is not None else 0
    series_uid = hierarchy.GetItemUID(item, "DICOM") if item else ""  # set by Slicer's DICOM module
    if series_uid:
        source["series_uid"] = series_uid
    instances = instance_uids(volume_node)
    if instances:
        source["dicom_instances"] = len(instances)
    return source
