"""Label map -> one closed surface file per label (the engine behind `export-stl` and `segment --stl`)."""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage

from ..io.atomic import write_json
from ..io.volume import Volume
from ..progress import CancelToken, ProgressCallback, check_cancelled, no_progress
from .options import MeshOptions
from .report import MeshReport
from .surface import surface_mesh
from .writers import write_surface

LOG = logging.getLogger(__name__)

LabelNames = Mapping[int, tuple[str, tuple[int, int, int]]]

DEFAULT_COLOR = (230, 220, 70)
_FACE_CONNECTIVITY = ndimage.generate_binary_structure(3, 1)
_PROJECTED_LABELS = 8


def export_label_meshes(
    labels: np.ndarray,
    reference: Volume,
    label_names: LabelNames,
    out_dir: str | os.PathLike,
    options: MeshOptions,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> list[MeshReport]:
    """Write one surface per label value into ``out_dir``.

    Every non-zero value in ``labels`` and every value in ``label_names`` gets a report;
    values with no voxels get no file and a warning (logged and in the report).
    Each label is meshed inside its bounding box plus one voxel of background, so work
    scales with the label's size, not the volume's.

    Args:
        labels: integer label map ``[k, j, i]`` on ``reference``'s grid (0 = background).
        reference: supplies spacing, origin and direction (its array is not read).
        label_names: ``{value: (name, (r, g, b))}``; missing values are named ``label_<value>``.
        out_dir: folder for the files ``<name with spaces as _>.<format>``.
        options: smoothing, decimation, coordinates and format.
        progress: ``(fraction, message)`` callback.
        cancel: checked between labels.

    Returns:
        One :class:`MeshReport` per label, in increasing label order.

    Raises:
        ValueError: ``labels`` is not an integer array on ``reference``'s grid.
    """
    progress = progress or no_progress
    _check_labels(labels, reference)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    index_to_patient = reference.index_to_lps() if options.coords == "lps" else reference.index_to_ras()
    boxes = _bounding_boxes(labels)
    values = sorted(set(boxes) | {int(v) for v in label_names if int(v) != 0})
    file_names = _file_names(values, label_names, options.format)
    voxel_volume = float(np.prod(reference.spacing))
    reports = []
    for number, value in enumerate(values):
        check_cancelled(cancel)
        name = _name(value, label_names)
        progress(number / max(len(values), 1), f"mesh: {name} ({number + 1}/{len(values)})")
        if value not in boxes:
            reports.append(_missing(value, name, options.coords, "the label has no voxels; no mesh written"))
            continue
        mask, start = _padded_mask(labels, value, boxes[value])
        mask = _clean_mask(mask, options, voxel_volume)
        mesh = surface_mesh(mask, index_to_patient @ _translation(start), options)
        file_name = file_names[value]
        write_surface(mesh, out_dir / file_name, _color(value, label_names), name)
        reports.append(MeshReport.measured(value, name, file_name, mesh.measures(), options.coords))
    progress(1.0, f"mesh: {sum(r.file is not None for r in reports)} surfaces written")
    return reports


def export_meshes_with_report(
    labels: np.ndarray,
    reference: Volume,
    label_names: LabelNames,
    out_dir: str | os.PathLike,
    options: MeshOptions,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> list[MeshReport]:
    """:func:`export_label_meshes` plus ``out_dir/meshes.json`` (options and a report per label).

    This is what `export-stl` and `segment --stl` write.
    """
    reports = export_label_meshes(
        labels, reference, label_names, out_dir, options, progress=progress, cancel=cancel
    )
    write_meshes_json(out_dir, options, reports)
    return reports


def write_meshes_json(
    out_dir: str | os.PathLike,
    options: MeshOptions,
    reports: list[MeshReport],
    extra: dict[str, Any] | None = None,
) -> None:
    """Write ``out_dir/meshes.json``: coordinates, units, options, one report per mesh, and ``extra``."""
    write_json(
        Path(out_dir) / "meshes.json",
        {
            "coordinate_system": options.coords.upper(),
            "units": "mm",
            "options": {
                "smooth": options.smoothing_iterations,
                "passband": options.passband,
                "decimate": options.decimate,
                "format": options.format,
                "keep_largest": options.keep_largest,
                "fill_holes_mm3": options.fill_holes_mm3,
            },
            "meshes": [report.to_dict() for report in reports],
            **(extra or {}),
        },
    )


def mesh_file_name(name: str, extension: str) -> str:
    """``<name with spaces as _>.<extension>``, with path separators and odd characters replaced."""
    stem = re.sub(r"[^\w.\-]", "_", name.strip().replace(" ", "_")).strip(".") or "segment"
    return f"{stem}.{extension}"


def _check_labels(labels: np.ndarray, reference: Volume) -> None:
    if labels.ndim != 3 or labels.shape != reference.array.shape:
        raise ValueError(
            f"label map shape {labels.shape} does not match the reference grid {reference.array.shape}"
        )
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"label map must hold integers, not {labels.dtype}")


def _bounding_boxes(labels: np.ndarray) -> dict[int, tuple[slice, ...]]:
    """``{value: slices}`` for every positive label.

    Projections give the box around all positive labels; within it, up to
    ``_PROJECTED_LABELS`` values are boxed by projecting each value's mask (a few fast
    passes each), more by one ``ndimage.find_objects`` scan (slower per voxel).
    """
    if labels.size == 0:
        return {}
    columns = labels.max(axis=0)
    highest = int(columns.max())
    if highest <= 0:
        return {}
    union = _box_from_columns(columns, labels)
    inside = labels[union]
    if highest <= _PROJECTED_LABELS:
        mask = np.empty(inside.shape, dtype=bool)
        boxes = []
        for value in range(1, highest + 1):
            np.equal(inside, value, out=mask)
            as_bytes = mask.view(np.uint8)
            boxes.append(_box_from_columns(as_bytes.max(axis=0), as_bytes))
    else:
        if np.issubdtype(labels.dtype, np.signedinteger) and inside.min() < 0:
            inside = np.where(inside > 0, inside, 0)
        boxes = ndimage.find_objects(inside, max_label=highest)
    return {
        value: tuple(slice(outer.start + s.start, outer.start + s.stop) for outer, s in zip(union, box))
        for value, box in enumerate(boxes, start=1)
        if box is not None
    }


def _box_from_columns(columns: np.ndarray, volume: np.ndarray) -> tuple[slice, slice, slice] | None:
    """Box of the positive voxels of ``volume`` ``[k, j, i]``, given ``columns``, its maximum along k."""
    j = np.flatnonzero(columns.max(axis=1) > 0)
    if j.size == 0:
        return None
    i = np.flatnonzero(columns.max(axis=0) > 0)
    k = np.flatnonzero(volume[:, j[0] : j[-1] + 1, i[0] : i[-1] + 1].max(axis=(1, 2)) > 0)
    return slice(k[0], k[-1] + 1), slice(j[0], j[-1] + 1), slice(i[0], i[-1] + 1)


def _padded_mask(labels: np.ndarray, value: int, box: tuple[slice, ...]) -> tuple[np.ndarray, np.ndarray]:
    """The label's bounding box (bool) with one voxel of background all round; and the (i, j, k)
    of its first voxel."""
    crop = labels[box]
    mask = np.zeros(tuple(s + 2 for s in crop.shape), dtype=bool)
    np.equal(crop, value, out=mask[1:-1, 1:-1, 1:-1])
    start_kji = np.array([s.start for s in box]) - 1
    return mask, start_kji[::-1].astype(float)


def _clean_mask(mask: np.ndarray, options: MeshOptions, voxel_volume: float) -> np.ndarray:
    """Apply keep-largest-component and fill-small-holes (both 6-connected) when asked."""
    if options.keep_largest:
        regions, count = ndimage.label(mask, structure=_FACE_CONNECTIVITY)
        if count > 1:
            sizes = np.bincount(regions.ravel())
            sizes[0] = 0
            mask = (regions == int(np.argmax(sizes))).astype(np.uint8)
    if options.fill_holes_mm3 > 0:
        cavities, count = ndimage.label(mask == 0, structure=_FACE_CONNECTIVITY)
        if count > 1:
            outside = cavities[0, 0, 0]
            sizes = np.bincount(cavities.ravel()) * voxel_volume
            small = np.flatnonzero(sizes <= options.fill_holes_mm3)
            small = small[(small != 0) & (small != outside)]
            if small.size:
                mask = mask.copy()
                mask[np.isin(cavities, small)] = 1
    return mask


def _translation(start_ijk: np.ndarray) -> np.ndarray:
    matrix = np.eye(4)
    matrix[:3, 3] = start_ijk
    return matrix


def _name(value: int, label_names: LabelNames) -> str:
    return str(label_names[value][0]) if value in label_names else f"label_{value}"


def _color(value: int, label_names: LabelNames) -> tuple[int, int, int]:
    if value in label_names and label_names[value][1] is not None:
        return tuple(int(c) for c in label_names[value][1])  # type: ignore[return-value]
    return DEFAULT_COLOR


def _file_names(values: list[int], label_names: LabelNames, extension: str) -> dict[int, str]:
    """File name per value; a name used twice gets ``_<value>`` appended."""
    names = {value: mesh_file_name(_name(value, label_names), extension) for value in values}
    counts: dict[str, int] = {}
    for file_name in names.values():
        counts[file_name.lower()] = counts.get(file_name.lower(), 0) + 1
    return {
        value: (f"{Path(n).stem}_{value}.{extension}" if counts[n.lower()] > 1 else n)
        for value, n in names.items()
    }


def _missing(value: int, name: str, coords: str, warning: str) -> MeshReport:
    LOG.warning("%s (label %d): %s", name, value, warning)
    return MeshReport.missing(value, name, coords, warning)
