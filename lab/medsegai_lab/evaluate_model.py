"""Evaluate a chest CT model end to end (through ``segment_volume``) on held-out data.

    python -m medsegai_lab.evaluate_model --model MedSegAI/MedSegAILib/models/builtin/chest_ct --update-card

Measures, on the input grid of each scan (the engine resamples its labels back):
- CIP ``ct-64`` (never trained on): whole-lung, left- and right-lung Dice against its
  lung label map, and trachea Dice where the model has an airway segment;
- TotalSegmentator ``abdomen_ct_3mm`` lung bases against its v1 lobe labels (this scan
  IS in the training set: a sanity check, not a held-out figure);
- ``chest_ct_dicom`` (a training scan): agreement with its own pseudo-labels and whether
  the real mass is segmented, plus the engine timings on a full 512x512x141 series;
- held-out synthetic nodules: inserted into CIP ``ct-64`` lungs (a scan and a seed never
  used in training), sensitivity (a nodule counts as found when a predicted nodule
  overlaps it), mean Dice of the found ones, and false-positive components per scan.

``--update-card`` writes the figures into the model folder's ``model_card.json``
(``metrics``) and regenerates its ``MODEL_CARD.md``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from MedSegAILib.inference.engine import segment_volume
from MedSegAILib.io import Volume, read_volume
from MedSegAILib.io.shared_data import shared_data_path
from MedSegAILib.models.registry import load_model, resolve_model
from MedSegAILib.training.card_builder import write_card
from MedSegAILib.training.model_card_md import write_model_card_markdown
from MedSegAILib.training.synthetic_nodules import insert_random_nodules
from scipy import ndimage

from medsegai_lab.datasets import pseudo_label_classes
from medsegai_lab.montage import save_montage

CIP_CT = "cip_lung_ct/ct-64.nrrd"
CIP_LABELS = "cip_lung_ct/lm-64.nrrd"
TRAINING_CHEST = "chest_ct_dicom"
ABDOMEN_CT = "totalsegmentator/abdomen_ct_3mm.nii.gz"
ABDOMEN_LABELS = "totalsegmentator/abdomen_ct_3mm_totalseg_v1_labels.nii.gz"
CIP_LEFT_REGIONS = (3, 7, 8, 9, 10, 11)
CIP_RIGHT_REGIONS = (2, 4, 5, 6, 12, 13, 14)
CIP_TRACHEA_VALUE = 512
TS_LEFT = (13, 14)
TS_RIGHT = (15, 16, 17)
HELD_OUT_SEED = 1234


def dice(a: np.ndarray, b: np.ndarray) -> float | None:
    """Dice coefficient of two boolean masks (``None`` when both are empty)."""
    total = int(a.sum()) + int(b.sum())
    return None if total == 0 else round(2.0 * int((a & b).sum()) / total, 4)


def _label_value(model_labels: Sequence[Any], name: str) -> int:
    for label in model_labels:
        if label.name == name:
            return label.value
    return -1


def lung_scores(
    predicted: np.ndarray, left_truth: np.ndarray, right_truth: np.ndarray, labels: Sequence[Any]
) -> dict[str, Any]:
    """Whole/left/right lung Dice; predicted nodules inside the lung count as lung."""
    left, right = _label_value(labels, "left lung"), _label_value(labels, "right lung")
    nodule = _label_value(labels, "lung nodule")
    whole = np.isin(predicted, [left, right, nodule])
    return {
        "whole_lung_dice": dice(whole, left_truth | right_truth),
        "left_lung_dice": dice(predicted == left, left_truth),
        "right_lung_dice": dice(predicted == right, right_truth),
    }


def evaluate_cip(
    model, data: Path, montage: Path | None = None, fast: bool = False
) -> tuple[dict[str, Any], Volume, np.ndarray]:
    """Lung (and trachea) Dice on CIP ct-64; returns the scores, the volume and its lung truth.

    With ``montage`` a PNG of the prediction on the model grid is written there; ``fast``
    runs the engine's fast mode.
    """
    volume = read_volume(data / CIP_CT)
    truth = read_volume_labels(data / CIP_LABELS)
    region = truth & 255
    result = segment_volume(volume, model, fast=fast)
    predicted = result.labels.array
    if montage is not None:
        save_montage(
            result.model_grid.array,
            result.model_labels,
            result.model_grid.spacing,
            montage,
            title="CIP ct-64 prediction "
            "(1 left lung blue, 2 right lung red, 3 nodule green, 4 airway yellow)",
        )
    scores = lung_scores(
        predicted, np.isin(region, CIP_LEFT_REGIONS), np.isin(region, CIP_RIGHT_REGIONS), model.card.labels
    )
    airway = _label_value(model.card.labels, "airway")
    if airway > 0:
        scores["trachea_dice"] = dice(predicted == airway, truth == CIP_TRACHEA_VALUE)
        scores["trachea_note"] = (
            "CIP marks only the trachea (value 512) as airway; the model's airway includes the main bronchi"
        )
    nodule = _label_value(model.card.labels, "lung nodule")
    scores["nodule_false_positive_components"] = int(ndimage.label(predicted == nodule)[1])
    scores["timings_s"] = {k: round(v, 2) for k, v in result.timings.items()}
    lung_truth = (region >= 1) & (region <= 14)
    return scores, volume, lung_truth


def read_volume_labels(path: Path) -> np.ndarray:
    """A label map's integer array ``[k, j, i]`` (read without CT value checks)."""
    import SimpleITK as sitk

    return sitk.GetArrayFromImage(sitk.ReadImage(str(path))).astype(np.int64)


def evaluate_abdomen(model, data: Path) -> dict[str, Any]:
    """Lung-base Dice against TotalSegmentator v1 lobes (a training scan: sanity check only)."""
    volume = read_volume(data / ABDOMEN_CT)
    truth = read_volume_labels(data / ABDOMEN_LABELS)
    predicted = segment_volume(volume, model).labels.array
    scores = lung_scores(predicted, np.isin(truth, TS_LEFT), np.isin(truth, TS_RIGHT), model.card.labels)
    scores["note"] = "trained on this scan (its lobe labels were training targets); not a held-out figure"
    return scores


def evaluate_training_chest(model, data: Path, montage: Path | None = None) -> dict[str, Any]:
    """``chest_ct_dicom`` (a training scan): agreement with its pseudo-labels, timing, montage."""
    volume = read_volume(data / TRAINING_CHEST)
    result = segment_volume(volume, model)
    if montage is not None:
        mass_slice = int(
            np.argmax(
                (result.model_labels == _label_value(model.card.labels, "lung nodule")).sum(axis=(1, 2))
            )
        )
        save_montage(
            result.model_grid.array,
            result.model_labels,
            result.model_grid.spacing,
            montage,
            include_slices=[mass_slice],
            title="chest_ct_dicom prediction "
            "(1 left lung blue, 2 right lung red, 3 nodule green, 4 airway yellow)",
        )
    grid = result.model_grid
    pseudo = pseudo_label_classes(np.asarray(grid.array, dtype=np.float32), grid.spacing, with_masses=True)
    predicted = result.model_labels
    left, right = _label_value(model.card.labels, "left lung"), _label_value(model.card.labels, "right lung")
    nodule = _label_value(model.card.labels, "lung nodule")
    return {
        "whole_lung_dice_vs_pseudo_labels": dice(np.isin(predicted, [left, right, nodule]), pseudo == 1),
        "mass_found": bool(((predicted == nodule) & (pseudo == 2)).any()),
        "mass_dice_vs_pseudo_label": dice(predicted == nodule, pseudo == 2),
        "timings_s": {k: round(v, 2) for k, v in result.timings.items()},
        "note": (
            "trained on this scan; agreement with its own pseudo-labels on the model grid, "
            "not a held-out figure"
        ),
    }


def evaluate_held_out_nodules(
    model, volume: Volume, lung_truth: np.ndarray, scans: int, per_scan: int, seed: int
) -> dict[str, Any]:
    """Insert nodules into a held-out scan and measure how many the model finds.

    Args:
        model: the loaded model.
        volume: the host CT (CIP ct-64, never trained on).
        lung_truth: its lung mask, where nodules are placed.
        scans: how many independent insertions of ``per_scan`` nodules.
        seed: random seed (training uses other scans and seed streams).
    """
    nodule_value = _label_value(model.card.labels, "lung nodule")
    rng = np.random.default_rng(seed)
    spacing = volume.spacing
    found, total, dices, false_positives, per_kind = 0, 0, [], 0, {}
    min_diameter = 2.0 * max(spacing)  # a nodule must span at least two voxels of this scan
    for _ in range(scans):
        hu, mask, specs = insert_random_nodules(
            volume.array, lung_truth, spacing, per_scan, rng, diameter_range=(min_diameter, 30.0)
        )
        predicted = (
            segment_volume(volume.with_array(hu.astype(np.float32)), model).labels.array == nodule_value
        )
        components, count = ndimage.label(mask)
        predicted_components, predicted_count = ndimage.label(predicted)
        matched = set()
        for index in range(1, count + 1):
            truth = components == index
            total += 1
            kind = next((s.kind for s in specs if truth[tuple(int(round(c)) for c in s.center)]), "merged")
            stats = per_kind.setdefault(kind, [0, 0])
            stats[1] += 1
            hit = np.unique(predicted_components[truth])
            hit = hit[hit > 0]
            if hit.size:
                found += 1
                stats[0] += 1
                matched.update(int(h) for h in hit)
                dices.append(dice(np.isin(predicted_components, hit), truth))
        false_positives += predicted_count - len(matched)
    return {
        "host_scan": "CIP ct-64 (held out)",
        "seed": seed,
        "nodules": total,
        "diameter_range_mm": [round(min_diameter, 1), 30.0],
        "sensitivity": round(found / total, 3) if total else None,
        "found": found,
        "mean_dice_found": round(float(np.mean(dices)), 3) if dices else None,
        "false_positive_components_per_scan": round(false_positives / max(scans, 1), 2),
        "sensitivity_by_kind": {k: f"{v[0]}/{v[1]}" for k, v in sorted(per_kind.items())},
    }


def evaluate(
    model_folder: Path,
    data: Path,
    scans: int = 4,
    per_scan: int = 3,
    seed: int = HELD_OUT_SEED,
    montage_dir: Path | None = None,
    with_chest: bool = True,
) -> dict[str, Any]:
    """All figures for one model folder (see the module docstring)."""
    torch.set_num_threads(2)
    model = load_model(resolve_model(str(model_folder)), "cpu")
    if montage_dir is not None:
        montage_dir.mkdir(parents=True, exist_ok=True)
    cip, volume, lung_truth = evaluate_cip(
        model, data, montage_dir / "cip_ct64_prediction.png" if montage_dir else None
    )
    metrics: dict[str, Any] = {
        "evaluated_with": "segment_volume (end-to-end engine, CPU), labels compared on each scan's input grid"
    }
    metrics["cip_ct64"] = cip
    metrics["cip_ct64_fast_mode"] = {
        k: v for k, v in evaluate_cip(model, data, fast=True)[0].items() if k.endswith("dice")
    }
    metrics["abdomen_ct_3mm_lung_bases"] = evaluate_abdomen(model, data)
    metrics["held_out_inserted_nodules"] = evaluate_held_out_nodules(
        model, volume, lung_truth, scans, per_scan, seed
    )
    if with_chest:
        metrics["chest_ct_dicom_training_scan"] = evaluate_training_chest(
            model, data, montage_dir / "chest_ct_dicom_prediction.png" if montage_dir else None
        )
    return metrics


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m medsegai_lab.evaluate_model",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--model", required=True, type=Path, help="model folder (holding model_card.json)")
    parser.add_argument(
        "--data",
        type=Path,
        default=shared_data_path(),
        help="shared data folder (default $MEDSEGAI_SHARED_DATA, else ../shared/data)",
    )
    parser.add_argument("--scans", type=int, default=4, help="held-out nodule insertions (scans) (default 4)")
    parser.add_argument("--per-scan", type=int, default=3, help="nodules per inserted scan (default 3)")
    parser.add_argument("--seed", type=int, default=HELD_OUT_SEED)
    parser.add_argument("--json", type=Path, default=None, help="also write the metrics here")
    parser.add_argument(
        "--montage", type=Path, default=None, help="write PNG montages of the predictions into this folder"
    )
    parser.add_argument(
        "--skip-chest", action="store_true", help="skip the full chest_ct_dicom run (slow on a busy CPU)"
    )
    parser.add_argument(
        "--update-card", action="store_true", help="write metrics into the card and regenerate MODEL_CARD.md"
    )
    args = parser.parse_args(argv)
    metrics = evaluate(
        args.model, args.data, args.scans, args.per_scan, args.seed, args.montage, not args.skip_chest
    )
    metrics["command"] = "python -m medsegai_lab.evaluate_model " + " ".join(
        sys.argv[1:] if argv is None else argv
    )
    text = json.dumps(metrics, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    if args.update_card:
        card = json.loads((args.model / "model_card.json").read_text())
        card["metrics"] = metrics
        write_card(args.model, card)
        write_model_card_markdown(args.model)
    return 0


if __name__ == "__main__":
    sys.exit(main())
