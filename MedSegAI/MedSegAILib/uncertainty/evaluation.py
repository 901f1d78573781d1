"""Evaluate Monte-Carlo dropout uncertainty on validation scans that were never trained on.

    python -m MedSegAILib.uncertainty.evaluation [--model NAME_OR_PATH] [--samples 10] [--out FILE.json]

Cases: CIP ``ct-64`` (validation only, with its lung label map) as it is, with nodules
inserted (the training inserter, seed stream :data:`SEED`, never used in training) and
with added Gaussian noise (more realistic failure modes for a CT model than a clean
scan). For each case, on the model grid (the engine's body crop at model spacing):

- reference raw classes: CIP lung regions -> lung, CIP trachea (512) -> airway,
  inserted nodules -> lung nodule, else background (CIP labels resampled by nearest neighbour);
- errors: voxels whose predicted class (argmax of the Monte-Carlo mean) is not the reference;
- **error-detection AUROC** of the predictive entropy (and of the mutual information)
  over all voxels of the body crop, and over the sampled box alone (the lungs and their
  surroundings, where the task is hard);
- **calibration**: expected calibration error (ECE, 15 equal-width confidence bins) of the
  deterministic softmax and of the Monte-Carlo mean; a temperature fitted (negative
  log-likelihood, grid search) on the even-numbered cases and its ECE on the odd ones;
- **needs review**: per segment and case, the true Dice against the reference and the
  review statistics (uncertain fraction, sample agreement), to calibrate :mod:`.review`.

Writes a JSON report; docs/explainability.md and the model card quote it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
import SimpleITK as sitk
import torch
from scipy import stats

from ..inference.engine import SegmentationResult, segment_volume
from ..inference.resample import resample_like
from ..io import Volume, read_volume
from ..models.registry import LoadedModel, load_model, resolve_model
from ..training.synthetic_nodules import insert_random_nodules
from .mc_dropout import estimate_uncertainty
from .review import ENTROPY_THRESHOLD_NATS
from .summary import region_summary, segment_regions

DEFAULT_DATA = Path(__file__).resolve().parents[3].parent / "shared" / "data"
CIP_CT = "cip_lung_ct/ct-64.nrrd"
CIP_LABELS = "cip_lung_ct/lm-64.nrrd"
CIP_TRACHEA = 512
SEED = 2468
NOISE_SD_HU = (0.0, 60.0, 120.0)
ECE_BINS = 15
TEMPERATURES = np.round(np.arange(0.5, 3.01, 0.05), 2)


def auroc(scores: np.ndarray, positives: np.ndarray) -> Optional[float]:
    """Area under the ROC curve of ``scores`` for ``positives`` (Mann-Whitney U, ties averaged)."""
    positives = positives.astype(bool).ravel()
    count_pos, count_neg = int(positives.sum()), int((~positives).sum())
    if count_pos == 0 or count_neg == 0:
        return None
    ranks = stats.rankdata(scores.ravel())
    return float((ranks[positives].sum() - count_pos * (count_pos + 1) / 2.0) / (count_pos * count_neg))


def expected_calibration_error(confidence: np.ndarray, correct: np.ndarray, bins: int = ECE_BINS) -> float:
    """ECE: the confidence-weighted gap between accuracy and confidence over equal-width bins."""
    confidence, correct = confidence.ravel(), correct.ravel().astype(float)
    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.clip(np.digitize(confidence, edges[1:-1]), 0, bins - 1)
    total = 0.0
    for b in range(bins):
        chosen = index == b
        if chosen.any():
            total += chosen.sum() * abs(correct[chosen].mean() - confidence[chosen].mean())
    return float(total / confidence.size)


def tempered(probabilities: np.ndarray, temperature: float) -> np.ndarray:
    """Temperature scaling applied to probabilities: ``softmax(log p / T)`` (= ``softmax(z / T)``)."""
    logits = np.log(np.clip(probabilities.astype(np.float32), 1e-7, 1.0)) / temperature
    logits -= logits.max(axis=0, keepdims=True)
    exps = np.exp(logits)
    return exps / exps.sum(axis=0, keepdims=True)


def fit_temperature(probabilities: Sequence[np.ndarray], references: Sequence[np.ndarray]) -> float:
    """The temperature in :data:`TEMPERATURES` with the lowest mean negative log-likelihood."""
    best, best_nll = 1.0, np.inf
    for temperature in TEMPERATURES:
        nll, count = 0.0, 0
        for p, reference in zip(probabilities, references):
            q = tempered(p, float(temperature))
            picked = np.take_along_axis(q, reference[None].astype(np.int64), axis=0)[0]
            nll -= float(np.log(np.clip(picked, 1e-7, 1.0)).sum())
            count += reference.size
        if nll / count < best_nll:
            best, best_nll = float(temperature), nll / count
    return best


def reference_classes(result: SegmentationResult, labels: Volume, nodules: Optional[Volume], class_names: Sequence[str]) -> np.ndarray:
    """Reference raw classes on the model grid from CIP labels (and inserted nodule masks)."""
    names = [name.lower() for name in class_names]
    on_grid = sitk.GetArrayFromImage(resample_like(labels.to_sitk(), result.model_grid, sitk.sitkNearestNeighbor, 0)).astype(np.int64)
    region = on_grid & 255
    reference = np.zeros(on_grid.shape, dtype=np.uint8)
    reference[(region >= 1) & (region <= 14)] = names.index("lung")
    if "airway" in names:
        reference[on_grid == CIP_TRACHEA] = names.index("airway")
    if nodules is not None:
        inserted = sitk.GetArrayFromImage(resample_like(nodules.to_sitk(), result.model_grid, sitk.sitkNearestNeighbor, 0)) > 0
        reference[inserted] = names.index("lung nodule")
    return reference


def validation_cases(data: Path, nodule_scans: int) -> list[tuple[str, Volume, Optional[Volume]]]:
    """``(name, CT, inserted-nodule mask or None)``: CIP ct-64 clean, noised, and with nodules."""
    volume = read_volume(data / CIP_CT)
    labels = sitk.GetArrayFromImage(sitk.ReadImage(str(data / CIP_LABELS))).astype(np.int64)
    lung = ((labels & 255) >= 1) & ((labels & 255) <= 14)
    rng = np.random.default_rng(SEED)
    cases: list[tuple[str, Volume, Optional[Volume]]] = []
    for sd in NOISE_SD_HU:
        noised = volume.array.astype(np.float32) + (rng.normal(0.0, sd, volume.array.shape).astype(np.float32) if sd else 0.0)
        cases.append((f"cip_ct64_noise_{int(sd)}hu", volume.with_array(noised), None))
    min_diameter = 2.0 * max(volume.spacing)
    for index in range(nodule_scans):
        hu, mask, _ = insert_random_nodules(volume.array, lung, volume.spacing, 3, rng, diameter_range=(min_diameter, 30.0))
        cases.append((f"cip_ct64_nodules_{index}", volume.with_array(hu.astype(np.float32)), volume.with_array(mask.astype(np.uint8))))
    return cases


def evaluate(model: LoadedModel, data: Path, samples: int, nodule_scans: int) -> dict[str, Any]:
    """All figures (see the module docstring)."""
    labels = Volume.from_sitk(sitk.ReadImage(str(data / CIP_LABELS)))
    per_case, review_rows = [], []
    pooled = {"entropy": [], "mutual_information": [], "error": [], "in_box": [], "deterministic": [], "mc": [], "reference": []}
    for name, volume, nodules in validation_cases(data, nodule_scans):
        result = segment_volume(volume, model, keep_features=True)
        regions = segment_regions(result, model.card)
        uncertainty = estimate_uncertainty(result, model, samples, regions=regions)
        reference = reference_classes(result, labels, nodules, result.class_names)
        mean = uncertainty.mean_probabilities.astype(np.float32)
        error = mean.argmax(axis=0) != reference
        in_box = np.zeros(reference.shape, dtype=bool)
        if uncertainty.sampled_box is not None:
            in_box[uncertainty.sampled_box] = True
        per_case.append({
            "case": name,
            "error_fraction": round(float(error.mean()), 4),
            "auroc_entropy": _rounded(auroc(uncertainty.entropy, error)),
            "auroc_entropy_sampled_box": _rounded(auroc(uncertainty.entropy[in_box], error[in_box])),
            "mean_entropy_in_lungs": round(float(uncertainty.entropy[reference == 1].mean()), 4),
        })
        voxel_mm3 = float(np.prod(result.model_grid.spacing))
        for value, region in regions.items():
            summary = region_summary(uncertainty, region.mask, value, voxel_mm3)
            truth = _truth_mask(reference, model, value, result)
            review_rows.append({"case": name, "segment": model.card.label(value).name, "true_dice": _dice(region.mask, truth), **{
                key: summary[key] for key in ("uncertain_fraction", "dice_agreement", "needs_review")}})
        for key, values in (("entropy", uncertainty.entropy), ("mutual_information", uncertainty.mutual_information),
                            ("error", error), ("in_box", in_box), ("reference", reference)):
            pooled[key].append(values.ravel())
        pooled["deterministic"].append(result.probabilities.astype(np.float32).reshape(result.probabilities.shape[0], -1))
        pooled["mc"].append(mean.reshape(mean.shape[0], -1))
        print(f"{name}: {per_case[-1]}", file=sys.stderr, flush=True)
    return {
        "samples": samples,
        "entropy_threshold_nats": ENTROPY_THRESHOLD_NATS,
        "cases": per_case,
        "pooled": _pooled_figures(pooled),
        "calibration": _calibration(pooled),
        "review_rows": review_rows,
    }


def _truth_mask(reference: np.ndarray, model: LoadedModel, value: int, result: SegmentationResult) -> np.ndarray:
    """The reference mask of an output segment on the model grid (lungs split as the prediction is)."""
    from ..explain.targets import raw_class_by_label

    raw = raw_class_by_label(model.card)[value]
    truth = reference == raw
    name = model.card.label(value).name
    if name in ("left lung", "right lung"):
        x = result.model_grid.origin[0] + result.model_grid.spacing[0] * np.arange(reference.shape[2])
        predicted_lungs = np.isin(result.model_labels, [model.card.label("left lung").value, model.card.label("right lung").value])
        lung_x = x[np.nonzero(predicted_lungs)[2]] if predicted_lungs.any() else x
        midline = float(np.median(lung_x))
        side = x > midline if name == "left lung" else x <= midline
        truth &= np.broadcast_to(side, truth.shape)
    return truth


def _dice(a: np.ndarray, b: np.ndarray) -> Optional[float]:
    total = int(a.sum()) + int(b.sum())
    return None if total == 0 else round(2.0 * int((a & b).sum()) / total, 4)


def _rounded(value: Optional[float]) -> Optional[float]:
    return None if value is None else round(value, 4)


def _pooled_figures(pooled: dict[str, list[np.ndarray]]) -> dict[str, Any]:
    entropy, information = np.concatenate(pooled["entropy"]), np.concatenate(pooled["mutual_information"])
    error, in_box = np.concatenate(pooled["error"]), np.concatenate(pooled["in_box"])
    return {
        "voxels": int(error.size),
        "error_fraction": round(float(error.mean()), 4),
        "auroc_entropy": _rounded(auroc(entropy, error)),
        "auroc_mutual_information": _rounded(auroc(information, error)),
        "auroc_entropy_sampled_box": _rounded(auroc(entropy[in_box], error[in_box])),
        "auroc_mutual_information_sampled_box": _rounded(auroc(information[in_box], error[in_box])),
    }


def _calibration(pooled: dict[str, list[np.ndarray]]) -> dict[str, Any]:
    def ece(probabilities: list[np.ndarray], references: list[np.ndarray]) -> float:
        p, r = np.concatenate(probabilities, axis=1), np.concatenate(references)
        return round(expected_calibration_error(p.max(axis=0), p.argmax(axis=0) == r), 4)

    references = pooled["reference"]
    fit, test = slice(0, None, 2), slice(1, None, 2)
    temperature = fit_temperature(pooled["deterministic"][fit], references[fit])
    held_out = references[test]
    return {
        "bins": ECE_BINS,
        "ece_deterministic": ece(pooled["deterministic"], references),
        "ece_mc_mean": ece(pooled["mc"], references),
        "temperature_fitted_on_even_cases": temperature,
        "held_out_odd_cases": {
            "ece_deterministic": ece(pooled["deterministic"][test], held_out),
            "ece_deterministic_tempered": ece([tempered(p, temperature) for p in pooled["deterministic"][test]], held_out),
            "ece_mc_mean": ece(pooled["mc"][test], held_out),
            "ece_mc_mean_tempered": ece([tempered(p, temperature) for p in pooled["mc"][test]], held_out),
        },
    }


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m MedSegAILib.uncertainty.evaluation", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="model name or folder (default: the built-in chest_ct model)")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the shared data folder")
    parser.add_argument("--samples", type=int, default=10)
    parser.add_argument("--nodule-scans", type=int, default=3, help="CIP ct-64 copies with 3 inserted nodules each")
    parser.add_argument("--out", type=Path, required=True, help="where to write the JSON report")
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    model = load_model(resolve_model(args.model), "cpu")
    report = {"model": {"name": model.card.name, "version": model.card.version, "sha256": model.card.weights["sha256"]},
              "command": "python -m MedSegAILib.uncertainty.evaluation " + " ".join(sys.argv[1:] if argv is None else argv),
              **evaluate(model, args.data, args.samples, args.nodule_scans)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({k: report[k] for k in ("pooled", "calibration")}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
