"""Corrected masks as training data: the corrections store, its export and its training cases.

A store (default ``~/.medsegai/corrections``, or ``$MEDSEGAI_CORRECTIONS``) holds one
folder per case::

    <store>/<case id>/image.nii.gz   the CT, on its own grid (exact geometry)
                      labels.nii.gz  the corrected CONTRACT label map, on the CT grid
                      labels.json    names, colours, terminology of its values
                      case.json      source, model, who and when, changes vs the prediction

A case is written into a hidden staging folder inside the store and renamed into place,
so a case folder is either complete or absent. :func:`export_training_folder` turns the
store into a training folder of raw network classes (``dataset.json`` + ``images/`` +
``labels/``), which :func:`load_correction_cases` reads for ``train.py --corrections``.
"""

from __future__ import annotations

import datetime
import getpass
import json
import os
import re
import secrets
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk

from ..errors import InputError
from ..io import OutputDir, Volume, write_json, write_label_map
from ..io.atomic import atomic_path
from ..models.card import LabelInfo, read_labels_json
from ..progress import ProgressCallback
from .canonical import canonical_image, image_array, resample_onto
from .cases import IGNORE, NETWORK_CLASSES, Case

STORE_ENV = "MEDSEGAI_CORRECTIONS"
CASE_FORMAT = 1
DATASET_FORMAT = 1
DATASET_FILE = "dataset.json"
DEFAULT_WEIGHT = 0.2  # sampling weight of one correction case (a built-in source has 0.2 or 0.4)

NETWORK_CLASS_OF_NAME = {
    "left lung": 1,
    "right lung": 1,
    "lung": 1,
    "lung nodule": 2,
    "nodule": 2,
    "airway": 3,
    "trachea": 3,
}
"""Segment name (case-insensitive) -> raw network class; ``nodule <n>`` (detect) is a nodule too."""


@dataclass(frozen=True)
class CorrectionCase:
    """One stored case: its folder and its ``case.json``."""

    folder: Path
    record: dict[str, Any]

    @property
    def id(self) -> str:
        return self.folder.name


def default_store() -> Path:
    """``$MEDSEGAI_CORRECTIONS``, else ``~/.medsegai/corrections``."""
    return Path(os.environ.get(STORE_ENV) or Path.home() / ".medsegai" / "corrections")


def network_class(name: str) -> int | None:
    """The raw network class (1 lung, 2 lung nodule, 3 airway) of a segment name, or ``None``."""
    key = " ".join(name.strip().lower().replace("_", " ").split())
    if re.fullmatch(r"nodule \d+", key):
        return 2
    return NETWORK_CLASS_OF_NAME.get(key)


def label_changes(
    original: np.ndarray,
    original_labels: Sequence[LabelInfo],
    corrected: np.ndarray,
    corrected_labels: Sequence[LabelInfo],
    voxel_mm3: float,
) -> dict[str, dict[str, Any]]:
    """Per-segment changes from the original prediction to the corrected label map.

    Segments are matched by name (case-insensitive), since an edited segmentation may
    number its labels differently from the model.

    Args:
        original, corrected: label maps on the same grid.
        original_labels, corrected_labels: their ``labels.json`` entries.
        voxel_mm3: the volume of one voxel.

    Returns:
        ``{name: {"original_mm3", "corrected_mm3", "added_mm3", "removed_mm3", "dice"}}``;
        ``dice`` is ``None`` when the segment is empty in both.
    """
    names = list(
        dict.fromkeys([_key(i.name) for i in corrected_labels] + [_key(i.name) for i in original_labels])
    )
    shown = {_key(i.name): i.name for i in [*original_labels, *corrected_labels]}
    changes = {}
    for name in names:
        before = np.isin(original, [i.value for i in original_labels if _key(i.name) == name])
        after = np.isin(corrected, [i.value for i in corrected_labels if _key(i.name) == name])
        both, n_before, n_after = (
            int(np.count_nonzero(before & after)),
            int(np.count_nonzero(before)),
            int(np.count_nonzero(after)),
        )
        changes[shown[name]] = {
            "original_mm3": round(n_before * voxel_mm3, 3),
            "corrected_mm3": round(n_after * voxel_mm3, 3),
            "added_mm3": round((n_after - both) * voxel_mm3, 3),
            "removed_mm3": round((n_before - both) * voxel_mm3, 3),
            "dice": round(2.0 * both / (n_before + n_after), 6) if n_before + n_after else None,
        }
    return changes


def add_correction(
    store: str | os.PathLike,
    image: Volume,
    corrected: Volume,
    labels: Sequence[LabelInfo],
    *,
    original: Volume | None = None,
    original_labels: Sequence[LabelInfo] = (),
    model: Mapping[str, Any] | None = None,
    source: Mapping[str, Any] | None = None,
    author: str | None = None,
) -> CorrectionCase:
    """Store a corrected label map with its CT as a new case (atomically).

    Args:
        store: the store folder (created if missing).
        image: the CT; written with its exact geometry.
        corrected: the corrected label map; must be on ``image``'s grid.
        labels: names of ``corrected``'s values (every non-zero value needs one).
        original: the model's prediction on the same grid, for the change statistics.
        original_labels: names of ``original``'s values.
        model: the model that made ``original`` (``name``, ``version``, ``weights_sha256``).
        source: where the CT came from (``path``, ``series_uid``...).
        author: who corrected it (default: the login name).

    Returns:
        The new case.

    Raises:
        InputError: a label map is off the CT grid or has values without a name.
    """
    _check_label_map(corrected, image, labels, "corrected label map")
    if original is not None:
        _check_label_map(original, image, original_labels, "original segmentation")
    voxel_mm3 = float(abs(np.linalg.det(image.index_to_lps()[:3, :3])))
    now = datetime.datetime.now(datetime.timezone.utc)
    record = {
        "format": CASE_FORMAT,
        "created": now.isoformat(timespec="seconds"),
        "author": author or _login_name(),
        "source": dict(source or {}),
        "model": dict(model) if model else None,
        "grid": {
            "size_ijk": list(image.shape_ijk),
            "spacing": list(image.spacing),
            "origin": list(image.origin),
            "direction": image.direction.tolist(),
        },
        "labels": [info.name for info in labels],
        "changes": label_changes(original.array, original_labels, corrected.array, labels, voxel_mm3)
        if original is not None
        else None,
    }
    store = Path(store)
    try:
        store.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise InputError(
            f"{store}: cannot create the corrections store ({error.strerror}); choose another --store"
        ) from None
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=store))
    try:
        _write_ct(image, staging / "image.nii.gz")
        write_label_map(corrected.array, image, staging / "labels.nii.gz")
        write_json(staging / "labels.json", {"labels": [info.to_json() for info in labels]})
        folder = _new_case_folder(store, now)
        record["id"] = folder.name
        write_json(staging / "case.json", record)
        os.chmod(staging, 0o777 & ~_umask())  # mkdtemp makes 0700; the store may be shared
        os.rename(staging, folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return CorrectionCase(folder, record)


def list_corrections(store: str | os.PathLike) -> list[CorrectionCase]:
    """The complete cases of a store, oldest first (an absent store has none).

    Raises:
        InputError: a case's ``case.json`` is unreadable.
    """
    store = Path(store)
    if not store.is_dir():
        return []
    cases = []
    for folder in sorted(p for p in store.iterdir() if p.is_dir() and not p.name.startswith(".")):
        path = folder / "case.json"
        if not path.is_file():
            continue
        try:
            cases.append(CorrectionCase(folder, json.loads(path.read_text())))
        except ValueError as error:
            raise InputError(f"{path}: not valid JSON ({error}); remove or repair that case folder") from None
    return sorted(cases, key=lambda case: (str(case.record.get("created", "")), case.id))


def network_classes(labels: np.ndarray, label_info: Sequence[LabelInfo]) -> tuple[np.ndarray, dict[str, int]]:
    """A CONTRACT label map as raw network classes.

    Known names map by :func:`network_class`; voxels of other named segments become
    ``IGNORE`` (no loss there: what they are is unknown to the network's classes).

    Returns:
        ``(uint8 classes, {segment name: class})``.
    """
    classes = np.zeros(labels.shape, dtype=np.uint8)
    mapping = {}
    for info in label_info:
        value = network_class(info.name)
        mapping[info.name] = IGNORE if value is None else value
        classes[labels == info.value] = mapping[info.name]
    return classes, mapping


def export_training_folder(
    store: str | os.PathLike,
    out: str | os.PathLike,
    weight: float = DEFAULT_WEIGHT,
    progress: ProgressCallback | Callable[[float, str], None] | None = None,
) -> dict[str, Any]:
    """Write every case of ``store`` into ``out`` as training data (atomically).

    ``out`` gets ``images/<id>.nii.gz`` (the CT, unchanged), ``labels/<id>.nii.gz`` (raw
    network classes on the CT grid, see :func:`network_classes`) and ``dataset.json``.

    Returns:
        The ``dataset.json`` content.

    Raises:
        InputError: the store has no cases, or ``weight`` is not positive.
    """
    if not weight > 0:
        raise InputError(f"--weight {weight}: the sampling weight must be positive")
    cases = list_corrections(store)
    if not cases:
        raise InputError(
            f"{store}: no corrections stored; "
            "add some with `medsegai corrections add` or pick the right --store"
        )
    entries = []
    with OutputDir(out) as staged:
        for index, case in enumerate(cases):
            if progress:
                progress(index / len(cases), f"exporting {case.id}")
            label_volume = Volume.from_sitk(sitk.ReadImage(str(case.folder / "labels.nii.gz")))
            classes, mapping = network_classes(
                label_volume.array, read_labels_json(case.folder / "labels.json")
            )
            shutil.copyfile(case.folder / "image.nii.gz", staged.path(f"images/{case.id}.nii.gz"))
            write_label_map(classes, label_volume, staged.path(f"labels/{case.id}.nii.gz"))
            entries.append(
                {
                    "name": case.id,
                    "image": f"images/{case.id}.nii.gz",
                    "label": f"labels/{case.id}.nii.gz",
                    "weight": weight,
                    "classes_of_segments": mapping,
                }
            )
        dataset = {
            "format": DATASET_FORMAT,
            "classes": list(NETWORK_CLASSES),
            "ignore": IGNORE,
            "source_store": str(Path(store).resolve()),
            "cases": entries,
        }
        write_json(staged.path(DATASET_FILE), dataset)
    return dataset


def load_correction_cases(folder: str | os.PathLike, spacing: Sequence[float]) -> list[Case]:
    """The cases of an exported training folder, resampled to the model spacing like the others.

    Args:
        folder: a folder written by :func:`export_training_folder`.
        spacing: model spacing (x, y, z) mm.

    Returns:
        One :class:`~.datasets.Case` per entry (named ``correction:<id>``).

    Raises:
        InputError: ``folder`` is not such a folder.
    """
    folder = Path(folder)
    try:
        dataset = json.loads((folder / DATASET_FILE).read_text())
        entries = [
            (str(e["name"]), folder / e["image"], folder / e["label"], float(e["weight"]))
            for e in dataset["cases"]
        ]
    except FileNotFoundError:
        raise InputError(
            f"{folder}: no {DATASET_FILE}; make the folder with `medsegai corrections export --out DIR`"
        ) from None
    except (ValueError, KeyError, TypeError) as error:
        raise InputError(
            f"{folder / DATASET_FILE}: malformed ({error}); export the corrections again"
        ) from None
    cases = []
    for name, image_path, label_path, weight in entries:
        image = canonical_image(image_path, spacing)
        label = resample_onto(canonical_image(label_path, None, label=True), image, label=True)
        hu = np.clip(np.round(image_array(image)), -1024, 3071).astype(np.int16)
        cases.append(
            Case(
                f"correction:{name}",
                hu,
                image_array(label).astype(np.uint8),
                tuple(float(s) for s in spacing),
                weight,
            )
        )
    return cases


def _key(name: str) -> str:
    return name.strip().lower()


def _check_label_map(labels: Volume, image: Volume, label_info: Sequence[LabelInfo], what: str) -> None:
    where = labels.metadata.get("source", what)
    if not labels.same_grid(image):
        raise InputError(
            f"{where}: the {what} is not on the CT grid (size {labels.shape_ijk} vs {image.shape_ijk}, "
            f"spacing {_rounded(labels.spacing)} vs {_rounded(image.spacing)}, "
            f"origin {_rounded(labels.origin)} vs {_rounded(image.origin)}); "
            "give the label map segmented or exported on this CT"
        )
    unnamed = sorted(set(np.unique(labels.array).tolist()) - {0} - {info.value for info in label_info})
    if unnamed:
        raise InputError(
            f"{where}: label values {unnamed} have no name in its labels.json; "
            "give the labels.json written with it"
        )


def _rounded(values: Sequence[float]) -> list[float]:
    return [round(float(v), 3) for v in values]


def _write_ct(image: Volume, path: Path) -> None:
    """The CT as int16 when its values are whole HU in range (as DICOM CT is), else float32."""
    array = image.array
    whole = np.issubdtype(array.dtype, np.integer) or bool(np.all(np.round(array) == array))
    if whole and array.size and array.min() >= -32768 and array.max() <= 32767:
        array = array.astype(np.int16)
    else:
        array = array.astype(np.float32)
    with atomic_path(path) as temporary:
        sitk.WriteImage(image.with_array(array).to_sitk(), str(temporary), useCompression=True)


def _new_case_folder(store: Path, now: datetime.datetime) -> Path:
    while True:
        folder = store / f"{now:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"
        if not folder.exists():
            return folder


def _login_name() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
