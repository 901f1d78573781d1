"""Float maps (``uncertainty_*.nii.gz``, ``gradcam_*.nii.gz``) -> scalar volumes with colour tables."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from ..errors import InputError
from .volume_nodes import read_output_image, set_node_geometry

# Anchor colours (0..1 RGB) of the two colour tables, interpolated to 256 entries.
COLOR_MAPS: dict[str, list[tuple[float, float, float]]] = {
    "MedSegAI heat": [(0.0, 0.0, 0.0), (0.5, 0.0, 0.0), (1.0, 0.3, 0.0), (1.0, 0.85, 0.0), (1.0, 1.0, 1.0)],
    "MedSegAI uncertainty": [
        (0.05, 0.0, 0.3),
        (0.35, 0.0, 0.6),
        (0.8, 0.2, 0.45),
        (1.0, 0.6, 0.1),
        (1.0, 1.0, 0.6),
    ],
}


def color_table_node(scene, name: str):
    """The scene's colour table ``name`` from :data:`COLOR_MAPS`, created on first use."""
    existing = scene.GetFirstNodeByName(name)
    if existing is not None and existing.IsA("vtkMRMLColorTableNode"):
        return existing
    anchors = np.array(COLOR_MAPS[name])
    positions = np.linspace(0.0, 1.0, len(anchors))
    samples = np.linspace(0.0, 1.0, 256)
    node = scene.AddNewNodeByClass("vtkMRMLColorTableNode", name)
    node.SetTypeToUser()
    node.SetNumberOfColors(256)
    node.SetNamesInitialised(True)
    for index, t in enumerate(samples):
        rgb = [float(np.interp(t, positions, anchors[:, c])) for c in range(3)]
        node.SetColor(index, f"{t:.3f}", *rgb, 1.0)
    return node


def map_volume_node(
    path: str | os.PathLike, scene, name: str, color_map: str, value_range: tuple[float, float] | None = None
):
    """Load a float map as a scalar volume node with a colour table and window/level.

    Args:
        path: the map file, on the input volume's grid.
        scene: the MRML scene.
        name: the node name.
        color_map: a key of :data:`COLOR_MAPS`.
        value_range: the displayed range; default: the map's 0..max (Grad-CAM is 0..1).

    Returns:
        The ``vtkMRMLScalarVolumeNode``.

    Raises:
        InputError: the map cannot be read.
    """
    volume = read_output_image(path)
    node = scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", name)
    set_node_geometry(node, volume.with_array(volume.array.astype(np.float32, copy=False)))
    node.CreateDefaultDisplayNodes()
    low, high = value_range or (0.0, float(max(volume.array.max(), 1e-6)))
    display = node.GetDisplayNode()
    display.SetAndObserveColorNodeID(color_table_node(scene, color_map).GetID())
    display.AutoWindowLevelOff()
    display.SetWindowLevelMinMax(low, high)
    return node


def flagged_segments(summary_path: str | os.PathLike) -> list[str]:
    """Names of the segments that ``uncertainty.json`` flags for review.

    Reads ``{"segments": [{"name": ..., "needs_review": bool, ...}, ...]}`` as
    ``medsegai segment --uncertainty N`` writes it (``uncertainty.summary.uncertainty_json``).

    Raises:
        InputError: the file is missing or malformed.
    """
    path = Path(summary_path)
    try:
        return [
            str(entry["name"]) for entry in json.loads(path.read_text())["segments"] if entry["needs_review"]
        ]
    except FileNotFoundError:
        raise InputError(
            f"{path}: uncertainty summary is missing; run with uncertainty samples > 0"
        ) from None
    except (ValueError, KeyError, TypeError) as error:
        raise InputError(
            f"{path}: not a valid uncertainty.json ({type(error).__name__}: {error}); run the engine again"
        ) from None
