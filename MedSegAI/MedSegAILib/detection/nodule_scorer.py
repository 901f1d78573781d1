"""The calibrated nodule score of candidates: the patch classifier's logit, fused with the
candidate generator's own rank, through Platt scaling.

``score = sigmoid(slope * (logit + rank_weight * log(1 + rank)) + intercept)``, where ``rank``
is the candidate's place in the generator's ranking (0 = the most blob-like). The rank weight
is fitted by stacking: a logistic regression on the out-of-fold logits of networks each
trained without one training host, so it says how far the network's verdict on an unseen
scan should be trusted against the classical blob ranking. ``slope`` and ``intercept`` are
fitted on the same out-of-fold candidates at their natural frequency (a few nodules among
hundreds of vessels), so the score reads as the probability that a candidate of a scan the
network never saw is a nodule. A card without a fusion entry has ``rank_weight = 0``.

The classifier ships with the chest CT model: ``detection_card.json`` beside its
``model_card.json`` names the weights file, its SHA-256 (checked before loading) and the
calibration. A model folder without one (a bring-your-own segmentation model with lung
classes) uses the built-in classifier: the candidates come from the CT itself, so it does
not depend on which network segmented the lungs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ..models.card import ModelCard
from .patch_classifier import (
    PATCH_SPACING_MM,
    PatchNetwork,
    fused_for_inference,
    load_classifier,
    patch_logits,
)

DETECTION_CARD = "detection_card.json"
BUILTIN_FOLDER = Path(__file__).resolve().parents[1] / "models" / "builtin" / "chest_ct"


@dataclass
class NoduleScorer:
    """The patch classifier (a :class:`~.patch_classifier.NoduleClassifier` or an ensemble of them),
    its fusion with the candidate's blob rank, and the calibration."""

    network: PatchNetwork
    slope: float = 1.0
    intercept: float = 0.0
    rank_weight: float = 0.0
    name: str = "nodule classifier fused with the blob rank, calibrated probability"
    _fused: PatchNetwork = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._fused = fused_for_inference(self.network)

    def score(self, patches: np.ndarray, ranks: np.ndarray) -> np.ndarray:
        """Scores in [0, 1] of HU patches ``(n, d, h, w)`` (:func:`.patch_classifier.extract_patches`)
        of candidates at places ``ranks`` (0 first) in the generator's ranking."""
        return calibrate(
            fuse(patch_logits(self._fused, patches), ranks, self.rank_weight), self.slope, self.intercept
        )


def fuse(logits: np.ndarray, ranks: np.ndarray, rank_weight: float) -> np.ndarray:
    """``logits + rank_weight * log(1 + ranks)``: the network's logit and the candidate's blob rank in one."""
    return np.asarray(logits, dtype=float) + rank_weight * np.log1p(np.asarray(ranks, dtype=float))


def fit_rank_weight(logits: np.ndarray, ranks: np.ndarray, labels: np.ndarray) -> float:
    """The rank weight of :func:`fuse`: the ratio of the rank's to the logit's coefficient in a
    logistic regression of ``labels`` on ``(logits, log(1 + ranks))``.

    Raises:
        ValueError: only one class is present, or the logits carry no weight.
    """
    coefficients = fit_logistic(
        np.stack([np.asarray(logits, float), np.log1p(np.asarray(ranks, float))], axis=1), labels
    )
    if coefficients[0] <= 0:
        raise ValueError("the network's logits do not separate nodules from other candidates")
    return float(coefficients[1] / coefficients[0])


def calibrate(logits: np.ndarray, slope: float, intercept: float) -> np.ndarray:
    """``sigmoid(slope * logits + intercept)``."""
    return 1.0 / (1.0 + np.exp(-np.clip(slope * np.asarray(logits, dtype=float) + intercept, -50, 50)))


def fit_platt(logits: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """Platt scaling: the (slope, intercept) of a 1-D logistic regression.

    Raises:
        ValueError: only one class is present.
    """
    slope, intercept = fit_logistic(np.asarray(logits, dtype=float)[:, None], labels)
    return float(slope), float(intercept)


def fit_logistic(features: np.ndarray, labels: np.ndarray, iterations: int = 100) -> np.ndarray:
    """Coefficients of a logistic regression on ``features`` ``(n, p)``, then the intercept, by damped Newton.

    Raises:
        ValueError: only one class is present.
    """
    labels = np.asarray(labels, dtype=float)
    if labels.min() == labels.max():
        raise ValueError("need both nodules and other candidates to calibrate")
    design = np.concatenate([np.asarray(features, dtype=float), np.ones((len(labels), 1))], axis=1)

    def loss(beta: np.ndarray) -> float:
        z = design @ beta
        return float(np.sum(np.logaddexp(0.0, z) - labels * z))

    beta = np.zeros(design.shape[1])
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-np.clip(design @ beta, -50, 50)))
        hessian = design.T @ (design * (p * (1 - p))[:, None]) + 1e-6 * np.eye(len(beta))
        step = np.linalg.solve(hessian, design.T @ (p - labels))
        size = 1.0
        while loss(beta - size * step) > loss(beta) and size > 1e-4:
            size /= 2.0
        beta -= size * step
        if np.abs(size * step).max() < 1e-9:
            break
    return beta


def read_detection_card(path: str | Path) -> dict[str, Any]:
    """The ``nodule_classifier`` entry of a ``detection_card.json``.

    Raises:
        InputError: unreadable JSON, a missing key, or a classifier trained on patches of
            another spacing than :data:`~.patch_classifier.PATCH_SPACING_MM` (``patch_spacing_mm``).
    """
    try:
        entry = json.loads(Path(path).read_text())["nodule_classifier"]
        for key in ("file", "sha256", "calibration"):
            entry[key]
        float(entry["calibration"]["slope"]), float(entry["calibration"]["intercept"])
        _rank_weight(entry)
        spacing = float(entry.get("patch_spacing_mm", PATCH_SPACING_MM))
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        raise InputError(
            f"{path}: not a valid detection card ({error!r}); it needs nodule_classifier.file, "
            ".sha256 and .calibration.slope/.intercept, and a number in .fusion.rank_weight if "
            "it has a fusion"
        ) from None
    if abs(spacing - PATCH_SPACING_MM) > 1e-6:
        raise InputError(
            f"{path}: the nodule classifier was trained on patches sampled at {spacing} mm; this version of "
            f"MedSegAI samples them at {PATCH_SPACING_MM} mm (retrain it with "
            "python -m medsegai_lab.classifier_training)"
        )
    return entry


def scorer_for_model(card: ModelCard | None) -> NoduleScorer:
    """The nodule scorer shipped with ``card``'s model, else the built-in one.

    Raises:
        InputError: the detection card or the classifier weights are missing, malformed or altered.
    """
    folder = (
        card.folder
        if card is not None and card.folder and (card.folder / DETECTION_CARD).is_file()
        else BUILTIN_FOLDER
    )
    entry = read_detection_card(folder / DETECTION_CARD)
    network = load_classifier(folder / entry["file"], entry["sha256"])
    return NoduleScorer(
        network,
        float(entry["calibration"]["slope"]),
        float(entry["calibration"]["intercept"]),
        _rank_weight(entry),
    )


def _rank_weight(entry: dict[str, Any]) -> float:
    """The card's fusion weight; 0 (the network alone) for a card without a fusion."""
    return float((entry.get("fusion") or {}).get("rank_weight", 0.0))
