"""`medsegai corrections add|list|export`: corrected masks kept as training data.

The store (--store, else $MEDSEGAI_CORRECTIONS, else ~/.medsegai/corrections) holds one
folder per case: image.nii.gz (the CT, exact geometry), labels.nii.gz + labels.json (the
corrected label map on the CT grid) and case.json (source, model, who and when, and per
segment the volume added and removed and the Dice against the original prediction).

  add     store a corrected label map with its CT (and the original prediction, for the changes)
  list    the stored cases
  export  a training folder: images/, labels/ in the network's raw classes (1 lung,
          2 lung nodule, 3 airway; 255 = unknown segment, no loss) and dataset.json, for
          `python -m MedSegAILib.training.train --corrections DIR`
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..io import read_volume
from ..models.card import read_labels_json
from ..training.corrections import (
    DEFAULT_WEIGHT,
    CorrectionCase,
    add_correction,
    default_store,
    export_training_folder,
    list_corrections,
)
from .common import add_quiet_argument, progress_for
from .export_stl import read_label_map


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "corrections",
        help="keep corrected masks as training data (add, list, export)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(dest="corrections_command", metavar="ACTION")
    add = actions.add_parser("add", help="store a corrected label map with its CT")
    add.add_argument(
        "--image",
        required=True,
        metavar="CT",
        help="the CT the labels were drawn on: a volume file, a DICOM series folder or one of its files",
    )
    add.add_argument(
        "--series",
        metavar="UID",
        help="the DICOM SeriesInstanceUID to read when the --image folder holds several series",
    )
    add.add_argument(
        "--labels", required=True, metavar="CORRECTED", help="the corrected label map, on the CT grid"
    )
    add.add_argument(
        "--labels-json",
        metavar="labels.json",
        help="names of the corrected values (default: labels.json beside --labels, else beside --original)",
    )
    add.add_argument(
        "--original",
        metavar="segmentation.nii.gz",
        help="the model's prediction, for the per-segment changes; its labels.json and run.json "
        "(model name, version, weights SHA-256) are read from its folder",
    )
    add.add_argument(
        "--original-labels-json",
        metavar="labels.json",
        help="names of the original's values (default: beside --original)",
    )
    add.add_argument("--author", help="who corrected it (default: your login name)")
    _add_store_argument(add)
    listing = actions.add_parser("list", help="list the stored cases")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    _add_store_argument(listing)
    export = actions.add_parser("export", help="write a training folder (raw network classes) from the store")
    export.add_argument(
        "--out", required=True, metavar="DIR", help="training folder to write (created if missing)"
    )
    export.add_argument(
        "--weight",
        type=float,
        default=DEFAULT_WEIGHT,
        help=f"sampling weight of each case in training (default: {DEFAULT_WEIGHT}; "
        "a built-in scan has 0.2-0.4)",
    )
    add_quiet_argument(export)
    _add_store_argument(export)
    parser.set_defaults(func=run, corrections_parser=parser)


def _add_store_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--store",
        metavar="DIR",
        type=Path,
        default=None,
        help="the corrections store (default: $MEDSEGAI_CORRECTIONS, else ~/.medsegai/corrections)",
    )


def run(args: argparse.Namespace) -> int:
    """Dispatch `corrections add|list|export`; returns the exit code."""
    store = args.store if getattr(args, "store", None) else default_store()
    if args.corrections_command == "add":
        case = _add(args, store)
        print(f"stored case {case.id} in {case.folder}")
        for line in _change_lines(case):
            print("  " + line)
        return 0
    if args.corrections_command == "list":
        cases = list_corrections(store)
        if args.json:
            print(
                json.dumps(
                    {
                        "store": str(store),
                        "cases": [{**case.record, "folder": str(case.folder)} for case in cases],
                    },
                    indent=2,
                )
            )
        else:
            _print_table(store, cases)
        return 0
    if args.corrections_command == "export":
        dataset = export_training_folder(store, args.out, args.weight, progress=progress_for(args))
        print(f"wrote {len(dataset['cases'])} case(s) to {args.out}; train with --corrections {args.out}")
        return 0
    args.corrections_parser.print_help(sys.stderr)
    return 2


def _add(args: argparse.Namespace, store: Path) -> CorrectionCase:
    corrected_path = Path(args.labels)
    original_path = Path(args.original) if args.original else None
    labels_json = _first_existing(
        [
            args.labels_json,
            corrected_path.parent / "labels.json",
            original_path and original_path.parent / "labels.json",
        ]
    )
    if labels_json is None:
        raise InputError(
            f"{corrected_path}: no labels.json beside it; give the names of its values with --labels-json"
        )
    image = read_volume(args.image, series_uid=args.series)
    original, original_labels, model = None, [], None
    if original_path is not None:
        original = read_label_map(original_path)
        original_labels = read_labels_json(args.original_labels_json or original_path.parent / "labels.json")
        model = _model_of_run(original_path.parent / "run.json")
    return add_correction(
        store,
        image,
        read_label_map(corrected_path),
        read_labels_json(labels_json),
        original=original,
        original_labels=original_labels,
        model=model,
        source=_source(image.metadata),
        author=args.author,
    )


def _first_existing(candidates: list[Any]) -> Path | None:
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    if candidates[0]:
        raise InputError(
            f"{candidates[0]}: no such file; give the labels.json written with the corrected label map"
        )
    return None


def _model_of_run(path: Path) -> dict[str, Any] | None:
    """The model (name, version, weights SHA-256) from a ``run.json``, or ``None`` without one."""
    if not path.is_file():
        return None
    try:
        model = json.loads(path.read_text())["model"]
        return {key: model.get(key) for key in ("name", "version", "weights_sha256")}
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise InputError(
            f"{path}: not a valid run.json ({error}); remove it or run the model again"
        ) from None


def _source(metadata: dict[str, Any]) -> dict[str, Any]:
    keys = ("source", "format", "series_uid", "study_uid", "frame_of_reference_uid")
    return {("path" if key == "source" else key): metadata[key] for key in keys if metadata.get(key)}


def _change_lines(case: CorrectionCase) -> list[str]:
    changes = case.record.get("changes")
    if not changes:
        return ["no original prediction given: no change statistics"]
    lines = []
    for name, change in changes.items():
        dice = "n/a" if change["dice"] is None else f"{change['dice']:.4f}"
        lines.append(f"{name}: +{change['added_mm3']:.0f} mm3, -{change['removed_mm3']:.0f} mm3, Dice {dice}")
    return lines


def _print_table(store: Path, cases: list[CorrectionCase]) -> None:
    if not cases:
        print(f"no corrections in {store}")
        return
    print(f"{len(cases)} case(s) in {store}")
    for case in cases:
        model = case.record.get("model") or {}
        made_by = f"{model.get('name')} {model.get('version')}" if model else "model unknown"
        print(f"{case.id}  {case.record.get('created', '')}  {case.record.get('author', '')}  {made_by}")
        for line in _change_lines(case):
            print("    " + line)
