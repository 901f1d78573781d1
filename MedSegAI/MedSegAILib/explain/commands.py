"""What `segment --gradcam SEGMENT` and `detect --gradcam` add: the layer options and outputs."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from ..detection.detector import DetectionResult
from ..detection.nodule_scorer import NoduleScorer
from ..inference.engine import SegmentationResult
from ..io import write_float_map
from ..io.output_dir import OutputDir
from ..io.volume import Volume
from ..models.loaded import LoadedModel
from .finding_gradcam import (
    DEFAULT_FINDING_LAYER,
    DEFAULT_FINDING_METHOD,
    FINDING_CAM_METHODS,
    findings_gradcam,
)
from .gradcam import DEFAULT_LAYER
from .storage import quantised_for_storage
from .targets import segment_gradcam


def add_gradcam_layer_argument(parser: argparse.ArgumentParser) -> None:
    """``--gradcam-layer NAME`` (default :data:`~.gradcam.DEFAULT_LAYER`)."""
    parser.add_argument(
        "--gradcam-layer",
        default=DEFAULT_LAYER,
        metavar="NAME",
        help=f"the network layer Grad-CAM explains (default: {DEFAULT_LAYER}, the finest decoder block, "
        "computed from kept features; other layers, e.g. decoder.1, rerun the windows around the target "
        "and are slower)",
    )


def add_finding_gradcam_arguments(parser: argparse.ArgumentParser) -> None:
    """``--gradcam-layer NAME`` and ``--gradcam-method NAME`` for `detect`
    (defaults in :mod:`.finding_gradcam`)."""
    parser.add_argument(
        "--gradcam-layer",
        default=DEFAULT_FINDING_LAYER,
        metavar="NAME",
        help="the nodule classifier layer the finding map explains "
        f"(default: {DEFAULT_FINDING_LAYER}, 3 mm cells; "
        "any layer under features, e.g. features.6, the last block, 6 mm cells)",
    )
    parser.add_argument(
        "--gradcam-method",
        default=DEFAULT_FINDING_METHOD,
        choices=FINDING_CAM_METHODS,
        help="how the finding map weights the layer's activations "
        f"(default: {DEFAULT_FINDING_METHOD}, each cell by its own "
        "positive gradient; gradcam: by the channel's mean gradient, meaningful at features.6)",
    )


def gradcam_file_name(segment_name: str) -> str:
    """``gradcam_<segment name with spaces as _>.nii.gz`` (CONTRACT)."""
    return f"gradcam_{segment_name.replace(' ', '_')}.nii.gz"


def write_segment_gradcams(
    out: OutputDir,
    result: SegmentationResult,
    model: LoadedModel,
    volume: Volume,
    segments: Sequence[str],
    layer: str,
    fast: bool,
    threads: int,
) -> dict[str, Any]:
    """Write one Grad-CAM map per requested segment; returns what to record in run.json."""
    record: dict[str, Any] = {"layer": layer, "maps": {}}
    for segment in dict.fromkeys(segments):
        label = model.card.label(segment)
        values, raw = segment_gradcam(
            result, model, segment, layer=layer, volume=volume, fast=fast, threads=threads
        )
        name = gradcam_file_name(label.name)
        write_float_map(quantised_for_storage(values), volume, out.path(name))
        record["maps"][name] = {
            "windows_computed": raw.windows_run,
            "windows_total": raw.windows_total,
            "empty_target": raw.windows_run == 0,
        }
    return record


def write_findings_gradcam(
    out: OutputDir,
    result: SegmentationResult,
    detection: DetectionResult,
    scorer: NoduleScorer,
    volume: Volume,
    layer: str = DEFAULT_FINDING_LAYER,
    method: str = DEFAULT_FINDING_METHOD,
    names: Sequence[str] = ("gradcam_nodules.nii.gz",),
) -> dict[str, Any]:
    """Write the classifier's Grad-CAM of every finding in one map, under each of ``names``
    (``gradcam_nodules.nii.gz``; `segment --gradcam "lung nodule"`: ``gradcam_lung_nodule.nii.gz``,
    since the findings are that segment); returns what to record in run.json."""
    values, cams = findings_gradcam(
        result.model_grid, detection.findings, scorer.network, volume, layer, method
    )
    stored = quantised_for_storage(values)
    for name in names:
        write_float_map(stored, volume, out.path(name))
    return {
        "maps": list(names),
        "layer": layer,
        "method": method,
        "target": "nodule classifier logit of each finding's patch",
        "findings": len(cams),
        "empty_maps": sum(1 for cam in cams if not cam.patch_map.any()),
    }
