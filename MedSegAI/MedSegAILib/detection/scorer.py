"""The calibrated score of a nodule candidate: logistic regression on candidate features.

``score = sigmoid(bias + weights . (features - mean) / scale)``, fitted by L2-regularised
Newton iterations (:func:`fit_logistic`). The parameters are stored as safetensors.

A model folder may ship a fitted scorer: ``detection_card.json`` beside ``model_card.json``
names the weights file, its SHA-256 (checked before loading) and the SHA-256 of the
segmentation weights whose candidates it was fitted on (:func:`scorer_for_model`). Without
one, or when the segmentation weights changed since, the score is the candidate's maximum
nodule probability (:class:`ProbabilityScorer`).
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Optional, Protocol, Sequence

import numpy as np

from ..errors import InputError
from ..models.card import ModelCard

DETECTION_CARD = "detection_card.json"
BUILTIN_FOLDER = Path(__file__).resolve().parents[1] / "models" / "builtin" / "chest_ct"
BUILTIN_FILE = BUILTIN_FOLDER / "fp_reduction.safetensors"


class Scorer(Protocol):
    """Anything that maps candidate features to a score in [0, 1]."""

    name: str

    def score(self, features: Mapping[str, float]) -> float: ...


class ProbabilityScorer:
    """Score = the candidate's maximum nodule probability (no false-positive reduction)."""

    name = "max nodule probability"

    def score(self, features: Mapping[str, float]) -> float:
        return float(features["max_probability"])


@dataclass(frozen=True)
class LogisticScorer:
    """A fitted logistic regression on named, standardised features."""

    feature_names: tuple[str, ...]
    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray
    bias: float
    name: str = "logistic regression"

    def score(self, features: Mapping[str, float]) -> float:
        return float(self.score_matrix(np.array([[features[n] for n in self.feature_names]]))[0])

    def score_matrix(self, x: np.ndarray) -> np.ndarray:
        """Scores of rows of ``x`` (columns in ``feature_names`` order)."""
        z = self.bias + ((np.asarray(x, dtype=float) - self.mean) / self.scale) @ self.weights
        return 1.0 / (1.0 + np.exp(-np.clip(z, -50, 50)))

    def save(self, path: str | os.PathLike) -> str:
        """Write safetensors; returns the file's SHA-256."""
        from safetensors.numpy import save_file

        tensors = {"mean": self.mean, "scale": self.scale, "weights": self.weights, "bias": np.array([self.bias])}
        save_file({k: np.ascontiguousarray(v, dtype=np.float64) for k, v in tensors.items()}, str(path),
                  metadata={"feature_names": ",".join(self.feature_names)})
        return sha256_of(path)

    @classmethod
    def load(cls, path: str | os.PathLike, sha256: Optional[str] = None) -> "LogisticScorer":
        """Read safetensors written by :meth:`save`, checking ``sha256`` first when given.

        Raises:
            InputError: the file is missing, altered (checksum) or malformed.
        """
        from safetensors import safe_open

        path = Path(path)
        if not path.is_file():
            raise InputError(f"{path}: false-positive reduction weights not found; reinstall MedSegAI")
        if sha256 is not None and sha256_of(path) != sha256:
            raise InputError(f"{path}: SHA-256 does not match the expected {sha256}; the weights file is altered, reinstall MedSegAI")
        try:
            with safe_open(str(path), framework="numpy") as handle:
                names = tuple((handle.metadata() or {})["feature_names"].split(","))
                values = {key: handle.get_tensor(key) for key in ("mean", "scale", "weights", "bias")}
        except (KeyError, OSError, ValueError) as error:
            raise InputError(f"{path}: not a valid false-positive reduction weights file ({error})") from None
        return cls(names, values["mean"], values["scale"], values["weights"], float(values["bias"][0]))


def sha256_of(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def scorer_for_model(card: ModelCard) -> Scorer:
    """The FP-reduction scorer shipped with ``card``'s model, else :class:`ProbabilityScorer`.

    The scorer is used only when ``detection_card.json`` in the model folder says it was
    fitted on this model's weights (same SHA-256); otherwise a warning says why it is not.

    Raises:
        InputError: the detection card or the scorer's weights file is malformed or altered.
    """
    path = card.folder / DETECTION_CARD if card.folder else None
    if path is None or not path.is_file():
        return ProbabilityScorer()
    entry = read_detection_card(path)
    if entry["segmentation_weights_sha256"] != card.weights.get("sha256"):
        warnings.warn(f"{path}: its FP-reduction scorer was fitted on other {card.name} weights; "
                      "scoring candidates by nodule probability instead (refit with detection.fp_training)", stacklevel=2)
        return ProbabilityScorer()
    return LogisticScorer.load(path.parent / entry["file"], entry["sha256"])


def read_detection_card(path: str | os.PathLike) -> dict[str, Any]:
    """The ``fp_reduction`` entry of a ``detection_card.json``.

    Raises:
        InputError: unreadable JSON or a missing key.
    """
    try:
        entry = json.loads(Path(path).read_text())["fp_reduction"]
        for key in ("file", "sha256", "segmentation_weights_sha256"):
            entry[key]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise InputError(f"{path}: not a valid detection card ({error!r}); it needs fp_reduction.file, .sha256 "
                         "and .segmentation_weights_sha256") from None
    return entry


def fit_logistic(
    x: np.ndarray, y: np.ndarray, feature_names: Sequence[str], l2: float = 1.0, iterations: int = 50
) -> LogisticScorer:
    """Fit an L2-regularised logistic regression by Newton's method.

    Args:
        x: ``(n, len(feature_names))`` features.
        y: ``(n,)`` labels, 1 = true nodule, 0 = false candidate.
        feature_names: column names.
        l2: penalty on the standardised weights (not on the bias).
        iterations: Newton steps at most.

    Returns:
        The fitted scorer.

    Raises:
        ValueError: shapes disagree or only one class is present.
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    if x.ndim != 2 or x.shape != (len(y), len(feature_names)):
        raise ValueError(f"features {x.shape} do not match {len(y)} labels x {len(feature_names)} names")
    if y.min() == y.max():
        raise ValueError("need both true nodules and false candidates to fit a scorer")
    mean = x.mean(axis=0)
    scale = np.where(x.std(axis=0) > 1e-9, x.std(axis=0), 1.0)
    design = np.hstack([np.ones((len(x), 1)), (x - mean) / scale])
    beta = np.zeros(design.shape[1])
    penalty = np.diag([0.0] + [l2] * (design.shape[1] - 1))
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-np.clip(design @ beta, -50, 50)))
        gradient = design.T @ (p - y) + penalty @ beta
        hessian = design.T @ (design * (p * (1 - p))[:, None]) + penalty + 1e-9 * np.eye(len(beta))
        step = np.linalg.solve(hessian, gradient)
        beta -= step
        if np.abs(step).max() < 1e-8:
            break
    return LogisticScorer(tuple(feature_names), mean, scale, beta[1:], float(beta[0]))
