"""Read predictions and references for FROC evaluation.

Predictions: a folder searched for ``findings.json`` files (the scan id is the folder that
holds each one, relative to the given folder), or a list of findings JSON files (the scan id
is the parent folder's name for ``findings.json``, else the file name without ``.json``).

References: a JSON file ``{"scans": {"<scan id>": [{"center": [x, y, z], "diameter_mm": d}, ...]}}``
(LPS mm; list every evaluated scan, with ``[]`` when it has no nodules), or a folder of
label maps ``<scan id>.nii.gz`` (also ``.nii``, ``.nrrd``, ``.mha``): every connected
component of every non-zero value is one nodule, its diameter the long axial diameter.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from ..errors import InputError
from ..io.volume import Volume
from .froc import PredictedFinding, ReferenceNodule
from .measure import measure_component

MASK_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".mha", ".mhd")


def load_predictions(paths: Sequence[str | os.PathLike]) -> dict[str, list[PredictedFinding]]:
    """Scan id -> findings, from folders of ``findings.json`` and/or findings files.

    Raises:
        InputError: a path is missing, holds no findings, or a file is not a findings JSON.
    """
    predictions: dict[str, list[PredictedFinding]] = {}
    for path in map(Path, paths):
        if path.is_dir():
            files = sorted(path.rglob("findings.json"))
            if not files:
                raise InputError(
                    f"{path}: no findings.json found in this folder; give `medsegai detect` output folders"
                )
            named = [(str(f.parent.relative_to(path)) if f.parent != path else path.name, f) for f in files]
        elif path.is_file():
            named = [
                (path.parent.name if path.name == "findings.json" else path.name.removesuffix(".json"), path)
            ]
        else:
            raise InputError(f"{path}: no such file or folder; check the --predictions path")
        for scan, file in named:
            if scan in predictions:
                raise InputError(
                    f"{file}: scan id {scan!r} appears twice in the predictions; give each scan once"
                )
            predictions[scan] = _read_findings(file)
    return predictions


def load_references(path: str | os.PathLike) -> dict[str, list[ReferenceNodule]]:
    """Scan id -> reference nodules, from a points JSON or a folder of label maps.

    Raises:
        InputError: the path is missing, malformed, or holds no label maps.
    """
    path = Path(path)
    if path.is_file():
        data = _read_json(path)
        scans = data.get("scans") if isinstance(data, dict) else None
        if not isinstance(scans, dict):
            raise InputError(
                f'{path}: expected {{"scans": {{"<scan id>": [{{"center": [x, y, z], "diameter_mm": d}}]}}}}'
            )
        try:
            return {
                str(scan): [ReferenceNodule(_point(n["center"]), float(n["diameter_mm"])) for n in nodules]
                for scan, nodules in scans.items()
            }
        except (KeyError, TypeError, ValueError):
            raise InputError(
                f'{path}: every reference nodule needs "center" [x, y, z] and "diameter_mm"'
            ) from None
    if path.is_dir():
        files = sorted(f for f in path.iterdir() if f.name.lower().endswith(MASK_SUFFIXES))
        if not files:
            raise InputError(f"{path}: no label maps ({', '.join(MASK_SUFFIXES)}) in this folder")
        return {_strip_suffix(f.name): references_from_label_map(_read_label_map(f)) for f in files}
    raise InputError(f"{path}: no such file or folder; check the --reference path")


def references_from_label_map(labels: Volume) -> list[ReferenceNodule]:
    """One reference nodule per connected component (26-connected) of each non-zero value."""
    nodules = []
    structure = np.ones((3, 3, 3), dtype=bool)
    for value in np.unique(labels.array[labels.array > 0]):
        components, count = ndimage.label(labels.array == value, structure=structure)
        for index in range(1, count + 1):
            m = measure_component(components == index, labels)
            nodules.append(ReferenceNodule(m.center, m.long_axis_mm))
    return nodules


def _read_findings(path: Path) -> list[PredictedFinding]:
    data = _read_json(path)
    findings = data.get("findings") if isinstance(data, dict) else None
    if not isinstance(findings, list):
        raise InputError(f'{path}: not a findings file (no "findings" list); give `medsegai detect` output')
    if data.get("coordinate_system", "LPS") != "LPS":
        raise InputError(
            f"{path}: coordinate_system is {data['coordinate_system']!r}; FROC needs LPS findings"
        )
    try:
        return [PredictedFinding(_point(f["center"]), float(f["score"])) for f in findings]
    except (KeyError, TypeError, ValueError):
        raise InputError(f'{path}: every finding needs "center" [x, y, z] and "score"') from None


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InputError(f"{path}: cannot be read as JSON ({error}); check the file") from None


def _read_label_map(path: Path) -> Volume:
    try:
        image = sitk.ReadImage(str(path))
    except RuntimeError:
        raise InputError(f"{path}: cannot be read as a label map; give NIfTI, NRRD or MetaImage") from None
    if image.GetDimension() != 3 or image.GetNumberOfComponentsPerPixel() != 1:
        raise InputError(f"{path}: a reference label map must be a 3-D scalar image")
    volume = Volume.from_sitk(image)
    volume.array = np.rint(volume.array).astype(np.int64)
    return volume


def _point(values: Any) -> tuple[float, float, float]:
    point = tuple(float(v) for v in values)
    if len(point) != 3:
        raise ValueError("a point needs 3 coordinates")
    return point  # type: ignore[return-value]


def _strip_suffix(name: str) -> str:
    for suffix in MASK_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name
