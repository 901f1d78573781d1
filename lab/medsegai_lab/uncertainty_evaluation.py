"""Evaluate Monte-Carlo dropout uncertainty on validation scans that were never trained on.

    python -m medsegai_lab.uncertainty_evaluation [--model NAME_OR_PATH] [--samples 10] [--out FILE.json]

Cases: CIP ``ct-64`` (validation only, with its lung label map) as it is, with nodules
inserted (the training inserter, seed stream :data:`SEED`, never used in training) and
with added Gaussian noise (more realistic failure modes for a CT model than a clean
scan). For each case, on the model grid (the engine's body crop at model spacing):

- reference raw classes: CIP lung regions -> lung, CIP trachea (512) -> airway,
  inserted nodules -> lung nodule, else background (CIP labels resampled by nearest neighbour);
- errors: voxels where the delivered segmentation (its segments as raw classes) is not
  the reference; also, for comparison, where the raw network's Monte-Carlo-mean argmax
  is not (that counts air outside the body that the network calls lung and
  post-processing removes);
- **error-detection AUROC** of several scores (:data:`SCORES`: Monte-Carlo entropy and
  mutual information, deterministic entropy, one minus the largest deterministic or
  Monte-Carlo-mean probability) in several regions (:data:`REGIONS`): the whole model
  grid, the body, the sampled box, and the *lung band* (every reference or predicted
  structure grown by :data:`LUNG_BAND_VOXELS`, 10 mm, inside the body: where the task is hard;
  far from the lungs every voxel is trivially right); in the lung band also without the
  voxels within :data:`STAIRCASE_VOXELS` of a reference class boundary (the staircase of
  CIP's 4 mm labels on the 2 mm grid);
- **calibration**: expected calibration error (ECE, 15 equal-width confidence bins) of the
  deterministic softmax and of the Monte-Carlo mean, everywhere and in the lung band;
  temperatures fitted (negative log-likelihood, grid search) on the even-numbered cases
  (everywhere, and in the lung band) and their ECE on the odd ones. All cases are the same
  scan, so this is not an independent check;
- **needs review**: per segment and case, the true Dice against the reference and the
  review statistics (uncertain fraction, sample agreement), to calibrate :mod:`.review`.

Writes a JSON report; docs/explainability.md and the model card quote it.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk
import torch
from MedSegAILib.explain.targets import raw_class_by_label
from MedSegAILib.inference.engine import SegmentationResult, segment_volume
from MedSegAILib.inference.resample import resample_like
from MedSegAILib.io import Volume, read_volume
from MedSegAILib.io.shared_data import shared_data_path
from MedSegAILib.models.normalization import outside_air_mask
from MedSegAILib.models.registry import LoadedModel, load_model, resolve_model
from MedSegAILib.training.synthetic_nodules import insert_random_nodules
from MedSegAILib.uncertainty.mc_dropout import estimate_uncertainty
from MedSegAILib.uncertainty.review import ENTROPY_THRESHOLD_NATS
from MedSegAILib.uncertainty.summary import region_summary, segment_regions
from scipy import ndimage, stats

DEFAULT_DATA = shared_data_path()
CIP_CT = "cip_lung_ct/ct-64.nrrd"
CIP_LABELS = "cip_lung_ct/lm-64.nrrd"
CIP_TRACHEA = 512
SEED = 2468
NOISE_SD_HU = (0.0, 60.0, 120.0)
ECE_BINS = 15
TEMPERATURES = np.round(np.arange(0.5, 3.01, 0.05), 2)
LUNG_BAND_VOXELS = 5
STAIRCASE_VOXELS = 1
REGIONS = ("model_grid", "body", "sampled_box", "lung_band")
SCORES = (
    "mc_entropy",
    "mc_mutual_information",
    "deterministic_entropy",
    "one_minus_max_softmax",
    "one_minus_max_mc_mean",
)


def auroc(scores: np.ndarray, positives: np.ndarray) -> float | None:
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


def reference_classes(
    result: SegmentationResult, labels: Volume, nodules: Volume | None, class_names: Sequence[str]
) -> np.ndarray:
    """Reference raw classes on the model grid from CIP labels (and inserted nodule masks)."""
    names = [name.lower() for name in class_names]
    on_grid = sitk.GetArrayFromImage(
        resample_like(labels.to_sitk(), result.model_grid, sitk.sitkNearestNeighbor, 0)
    ).astype(np.int64)
    region = on_grid & 255
    reference = np.zeros(on_grid.shape, dtype=np.uint8)
    reference[(region >= 1) & (region <= 14)] = names.index("lung")
    if "airway" in names:
        reference[on_grid == CIP_TRACHEA] = names.index("airway")
    if nodules is not None:
        inserted = (
            sitk.GetArrayFromImage(
                resample_like(nodules.to_sitk(), result.model_grid, sitk.sitkNearestNeighbor, 0)
            )
            > 0
        )
        reference[inserted] = names.index("lung nodule")
    return reference


def validation_cases(data: Path, nodule_scans: int) -> list[tuple[str, Volume, Volume | None]]:
    """``(name, CT, inserted-nodule mask or None)``: CIP ct-64 clean, noised, and with nodules."""
    volume = read_volume(data / CIP_CT)
    labels = sitk.GetArrayFromImage(sitk.ReadImage(str(data / CIP_LABELS))).astype(np.int64)
    lung = ((labels & 255) >= 1) & ((labels & 255) <= 14)
    rng = np.random.default_rng(SEED)
    cases: list[tuple[str, Volume, Volume | None]] = []
    for sd in NOISE_SD_HU:
        noised = volume.array.astype(np.float32) + (
            rng.normal(0.0, sd, volume.array.shape).astype(np.float32) if sd else 0.0
        )
        cases.append((f"cip_ct64_noise_{int(sd)}hu", volume.with_array(noised), None))
    min_diameter = 2.0 * max(volume.spacing)
    for index in range(nodule_scans):
        hu, mask, _ = insert_random_nodules(
            volume.array, lung, volume.spacing, 3, rng, diameter_range=(min_diameter, 30.0)
        )
        cases.append(
            (
                f"cip_ct64_nodules_{index}",
                volume.with_array(hu.astype(np.float32)),
                volume.with_array(mask.astype(np.uint8)),
            )
        )
    return cases


def evaluate(model: LoadedModel, data: Path, samples: int, nodule_scans: int) -> dict[str, Any]:
    """All figures (see the module docstring)."""
    labels = Volume.from_sitk(sitk.ReadImage(str(data / CIP_LABELS)))
    per_case, review_rows = [], []
    pooled: dict[str, list[np.ndarray]] = {
        key: [] for key in ("error", "raw_error", "beyond_staircase", *REGIONS, *SCORES)
    }
    calibration_inputs: dict[str, list[np.ndarray]] = {
        "deterministic": [],
        "mc": [],
        "reference": [],
        "band": [],
    }
    for name, volume, nodules in validation_cases(data, nodule_scans):
        result = segment_volume(volume, model, keep_features=True)
        regions = segment_regions(result, model.card)
        uncertainty = estimate_uncertainty(result, model, samples, regions=regions)
        reference = reference_classes(result, labels, nodules, result.class_names)
        deterministic = result.probabilities.astype(np.float32)
        mean = uncertainty.mean_probabilities.astype(np.float32)
        error = _delivered_classes(result, model) != reference
        raw_error = mean.argmax(axis=0) != reference
        masks = _regions(result, reference, uncertainty.sampled_box)
        scores = {
            "mc_entropy": uncertainty.entropy,
            "mc_mutual_information": uncertainty.mutual_information,
            "deterministic_entropy": -np.sum(
                deterministic * np.log(np.clip(deterministic, 1e-12, 1.0)), axis=0
            ),
            "one_minus_max_softmax": 1.0 - deterministic.max(axis=0),
            "one_minus_max_mc_mean": 1.0 - mean.max(axis=0),
        }
        per_case.append(
            {
                "case": name,
                "error_fraction": round(float(error.mean()), 4),
                "error_fraction_lung_band": round(float(error[masks["lung_band"]].mean()), 4),
                "raw_network_error_fraction": round(float(raw_error.mean()), 4),
                **{
                    f"auroc_mc_entropy_{region}": _rounded(auroc(scores["mc_entropy"][mask], error[mask]))
                    for region, mask in masks.items()
                },
                "auroc_one_minus_max_softmax_lung_band": _rounded(
                    auroc(scores["one_minus_max_softmax"][masks["lung_band"]], error[masks["lung_band"]])
                ),
                "sampled_fraction": round(uncertainty.sampled_fraction, 4),
            }
        )
        voxel_mm3 = float(np.prod(result.model_grid.spacing))
        for value, region in regions.items():
            summary = region_summary(uncertainty, region.mask, value, voxel_mm3)
            truth = _truth_mask(reference, model, value, result)
            review_rows.append(
                {
                    "case": name,
                    "segment": model.card.label(value).name,
                    "true_dice": _dice(region.mask, truth),
                    **{key: summary[key] for key in ("uncertain_fraction", "dice_agreement", "needs_review")},
                }
            )
        pooled["error"].append(error.ravel())
        pooled["raw_error"].append(raw_error.ravel())
        pooled["beyond_staircase"].append(~_near_reference_boundary(reference).ravel())
        for key, mask in masks.items():
            pooled[key].append(mask.ravel())
        for key, values in scores.items():
            pooled[key].append(np.asarray(values, dtype=np.float32).ravel())
        calibration_inputs["deterministic"].append(deterministic.reshape(deterministic.shape[0], -1))
        calibration_inputs["mc"].append(mean.reshape(mean.shape[0], -1))
        calibration_inputs["reference"].append(reference.ravel())
        calibration_inputs["band"].append(masks["lung_band"].ravel())
        print(f"{name}: {per_case[-1]}", file=sys.stderr, flush=True)
    return {
        "samples": samples,
        "entropy_threshold_nats": ENTROPY_THRESHOLD_NATS,
        "regions": REGIONS,
        "scores": SCORES,
        "cases": per_case,
        "pooled": _pooled_figures(pooled),
        "calibration": _calibration(calibration_inputs),
        "review_rows": review_rows,
    }


def _delivered_classes(result: SegmentationResult, model: LoadedModel) -> np.ndarray:
    """The raw network class of each voxel of the delivered (post-processed) segmentation."""
    classes = np.zeros(result.model_labels.shape, dtype=np.uint8)
    for value, raw in raw_class_by_label(model.card).items():
        classes[result.model_labels == value] = raw
    return classes


def _regions(
    result: SegmentationResult, reference: np.ndarray, box: tuple[slice, slice, slice]
) -> dict[str, np.ndarray]:
    """The voxel sets the AUROC is computed over (see :data:`REGIONS`)."""
    body = ~outside_air_mask(result.model_grid.array)
    in_box = np.zeros(reference.shape, dtype=bool)
    in_box[box] = True
    lungs = (reference > 0) | (result.model_labels > 0)
    band = ndimage.binary_dilation(lungs, iterations=LUNG_BAND_VOXELS) & body
    return {
        "model_grid": np.ones(reference.shape, dtype=bool),
        "body": body,
        "sampled_box": in_box,
        "lung_band": band,
    }


def _near_reference_boundary(reference: np.ndarray) -> np.ndarray:
    """Voxels within :data:`STAIRCASE_VOXELS` of a change of reference class (CIP's 4 mm staircase)."""
    size = 2 * STAIRCASE_VOXELS + 1
    return ndimage.grey_dilation(reference, size=size) != ndimage.grey_erosion(reference, size=size)


def _truth_mask(
    reference: np.ndarray, model: LoadedModel, value: int, result: SegmentationResult
) -> np.ndarray:
    """The reference mask of an output segment on the model grid (lungs split as the prediction is)."""
    raw = raw_class_by_label(model.card)[value]
    truth = reference == raw
    name = model.card.label(value).name
    if name in ("left lung", "right lung"):
        x = result.model_grid.origin[0] + result.model_grid.spacing[0] * np.arange(reference.shape[2])
        predicted_lungs = np.isin(
            result.model_labels, [model.card.label("left lung").value, model.card.label("right lung").value]
        )
        lung_x = x[np.nonzero(predicted_lungs)[2]] if predicted_lungs.any() else x
        midline = float(np.median(lung_x))
        side = x > midline if name == "left lung" else x <= midline
        truth &= np.broadcast_to(side, truth.shape)
    return truth


def _dice(a: np.ndarray, b: np.ndarray) -> float | None:
    total = int(a.sum()) + int(b.sum())
    return None if total == 0 else round(2.0 * int((a & b).sum()) / total, 4)


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def _pooled_figures(pooled: dict[str, list[np.ndarray]]) -> dict[str, Any]:
    """AUROC of every score for the errors, in every region; also without the reference's staircase."""
    error, beyond = np.concatenate(pooled["error"]), np.concatenate(pooled["beyond_staircase"])
    scores = {key: np.concatenate(pooled[key]) for key in SCORES}
    figures: dict[str, Any] = {"voxels": int(error.size), "error_fraction": round(float(error.mean()), 4)}
    for region in REGIONS:
        mask = np.concatenate(pooled[region])
        figures[region] = {
            "voxels": int(mask.sum()),
            "error_fraction": round(float(error[mask].mean()), 4),
            "auroc": {key: _rounded(auroc(values[mask], error[mask])) for key, values in scores.items()},
        }
    band = np.concatenate(pooled["lung_band"]) & beyond
    figures["lung_band_beyond_staircase"] = {
        "voxels": int(band.sum()),
        "error_fraction": round(float(error[band].mean()), 4),
        "auroc": {key: _rounded(auroc(values[band], error[band])) for key, values in scores.items()},
    }
    raw_error = np.concatenate(pooled["raw_error"])
    figures["raw_network_errors_model_grid"] = {
        "error_fraction": round(float(raw_error.mean()), 4),
        "auroc": {key: _rounded(auroc(values, raw_error)) for key, values in scores.items()},
    }
    return figures


def _calibration(inputs: dict[str, list[np.ndarray]]) -> dict[str, Any]:
    """ECE of the deterministic softmax and the Monte-Carlo mean, everywhere and in the lung band,
    and temperatures fitted on the even-numbered cases (everywhere; in the lung band), checked
    on the odd ones."""

    def ece(
        probabilities: list[np.ndarray],
        references: list[np.ndarray],
        masks: list[np.ndarray] | None = None,
    ) -> float:
        p, r = np.concatenate(probabilities, axis=1), np.concatenate(references)
        if masks is not None:
            keep = np.concatenate(masks)
            p, r = p[:, keep], r[keep]
        return round(expected_calibration_error(p.max(axis=0), p.argmax(axis=0) == r), 4)

    references, band = inputs["reference"], inputs["band"]
    fit, test = slice(0, None, 2), slice(1, None, 2)
    temperature = fit_temperature(inputs["deterministic"][fit], references[fit])
    held_out, held_band = references[test], band[test]
    deterministic_test = inputs["deterministic"][test]
    tempered_test = [tempered(p, temperature) for p in deterministic_test]
    mc_test = inputs["mc"][test]
    mc_tempered_test = [tempered(p, temperature) for p in mc_test]
    band_temperature = fit_temperature(
        [p[:, m] for p, m in zip(inputs["deterministic"][fit], band[fit])],
        [r[m] for r, m in zip(references[fit], band[fit])],
    )
    band_tempered_test = [tempered(p, band_temperature) for p in deterministic_test]
    return {
        "bins": ECE_BINS,
        "ece_deterministic": ece(inputs["deterministic"], references),
        "ece_mc_mean": ece(inputs["mc"], references),
        "ece_deterministic_lung_band": ece(inputs["deterministic"], references, band),
        "ece_mc_mean_lung_band": ece(inputs["mc"], references, band),
        "temperature_fitted_on_even_cases": temperature,
        "held_out_odd_cases": {
            "ece_deterministic": ece(deterministic_test, held_out),
            "ece_deterministic_tempered": ece(tempered_test, held_out),
            "ece_mc_mean": ece(mc_test, held_out),
            "ece_mc_mean_tempered": ece(mc_tempered_test, held_out),
            "ece_deterministic_lung_band": ece(deterministic_test, held_out, held_band),
            "ece_deterministic_tempered_lung_band": ece(tempered_test, held_out, held_band),
            "ece_mc_mean_lung_band": ece(mc_test, held_out, held_band),
            "ece_mc_mean_tempered_lung_band": ece(mc_tempered_test, held_out, held_band),
        },
        "temperature_fitted_on_even_cases_lung_band": band_temperature,
        "held_out_odd_cases_lung_band_temperature": {
            "ece_deterministic_lung_band": ece(deterministic_test, held_out, held_band),
            "ece_deterministic_tempered_lung_band": ece(band_tempered_test, held_out, held_band),
        },
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m medsegai_lab.uncertainty_evaluation",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--model", default=None, help="model name or folder (default: the built-in chest_ct model)"
    )
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the shared data folder")
    parser.add_argument("--samples", type=int, default=10)
    parser.add_argument(
        "--nodule-scans", type=int, default=3, help="CIP ct-64 copies with 3 inserted nodules each"
    )
    parser.add_argument("--out", type=Path, required=True, help="where to write the JSON report")
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    model = load_model(resolve_model(args.model), "cpu")
    report = {
        "model": {
            "name": model.card.name,
            "version": model.card.version,
            "sha256": model.card.weights["sha256"],
        },
        "command": "python -m medsegai_lab.uncertainty_evaluation "
        + " ".join(sys.argv[1:] if argv is None else argv),
        **evaluate(model, args.data, args.samples, args.nodule_scans),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({k: report[k] for k in ("pooled", "calibration")}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
