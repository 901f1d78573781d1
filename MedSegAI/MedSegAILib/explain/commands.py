"""What `segment --gradcam SEGMENT` and `detect --gradcam` add: the layer option and outputs."""

from __future__ import annotations

import argparse
from typing import Any, Sequence

from ..inference.engine import SegmentationResult
from ..io import write_float_map
from ..io.output_dir import OutputDir
from ..io.volume import Volume
from ..models.registry import LoadedModel
from .gradcam import DEFAULT_LAYER
from .storage import quantised_for_storage
from .targets import findings_gradcam, segment_gradcam


def add_gradcam_layer_argument(parser: argparse.ArgumentParser) -> None:
    """``--gradcam-layer NAME`` (default :data:`~.gradcam.DEFAULT_LAYER`)."""
    parser.add_argument(
        "--gradcam-layer", default=DEFAULT_LAYER, metavar="NAME",
        help=f"the network layer Grad-CAM explains (default: {DEFAULT_LAYER}, the finest decoder block, "
        "computed from kept features; other layers, e.g. decoder.1, rerun the windows around the target and are slower)",
    )


def gradcam_file_name(segment_name: str) -> str:
    """``gradcam_<segment name with spaces as _>.nii.gz`` (CONTRACT)."""
    return f"gradcam_{segment_name.replace(' ', '_')}.nii.gz"


def write_segment_gradcams(out: OutputDir, result: SegmentationResult, model: LoadedModel, volume: Volume,
                           segments: Sequence[str], layer: str, fast: bool, threads: int) -> dict[str, Any]:
    """Write one Grad-CAM map per requested segment; returns what to record in run.json."""
    record: dict[str, Any] = {"layer": layer, "maps": {}}
    for segment in dict.fromkeys(segments):
        label = model.card.label(segment)
        values, raw = segment_gradcam(result, model, segment, layer=layer, volume=volume, fast=fast, threads=threads)
        name = gradcam_file_name(label.name)
        write_float_map(quantised_for_storage(values), volume, out.path(name))
        record["maps"][name] = {"windows_computed": raw.windows_run, "windows_total": raw.windows_total,
                                "empty_target": raw.windows_run == 0}
    return record


def write_findings_gradcam(out: OutputDir, result: SegmentationResult, model: LoadedModel, volume: Volume,
                           finding_labels, centers_lps: Sequence[Sequence[float]], layer: str, fast: bool, threads: int) -> dict[str, Any]:
    """Write ``gradcam_nodules.nii.gz`` (one map for all findings); returns what to record in run.json."""
    values, raws = findings_gradcam(result, model, finding_labels, centers_lps, layer=layer, volume=volume, fast=fast, threads=threads)
    write_float_map(quantised_for_storage(values), volume, out.path("gradcam_nodules.nii.gz"))
    return {"layer": layer, "findings": len(raws), "windows_computed": sum(raw.windows_run for raw in raws)}
