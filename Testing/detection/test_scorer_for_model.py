"""The FP-reduction scorer shipped in a model folder is used only for the weights it was fitted on."""

from __future__ import annotations

import dataclasses
import json
import warnings

import numpy as np
import pytest

from MedSegAILib.detection.scorer import DETECTION_CARD, LogisticScorer, ProbabilityScorer, fit_logistic, scorer_for_model
from MedSegAILib.errors import InputError

from .fake_model import fake_model


def _model_folder(tmp_path, fitted_on: str):
    """A model folder holding a fitted scorer and a detection card naming ``fitted_on`` weights."""
    x = np.array([[0.9, 1.0], [0.8, 1.2], [0.6, 4.0], [0.7, 5.0]])
    scorer = fit_logistic(x, np.array([1, 1, 0, 0]), ("max_probability", "elongation"))
    digest = scorer.save(tmp_path / "fp_reduction.safetensors")
    card = {"fp_reduction": {"file": "fp_reduction.safetensors", "sha256": digest, "segmentation_weights_sha256": fitted_on}}
    (tmp_path / DETECTION_CARD).write_text(json.dumps(card))
    return dataclasses.replace(fake_model().card, folder=tmp_path)


def test_scorer_fitted_on_these_weights_is_used(tmp_path):
    card = _model_folder(tmp_path, fitted_on=fake_model().card.weights["sha256"])
    scorer = scorer_for_model(card)
    assert isinstance(scorer, LogisticScorer)
    assert scorer.score({"max_probability": 0.9, "elongation": 1.0}) > 0.5 > scorer.score({"max_probability": 0.6, "elongation": 5.0})


def test_scorer_fitted_on_other_weights_falls_back_to_probability_with_a_warning(tmp_path):
    card = _model_folder(tmp_path, fitted_on="f" * 64)
    with pytest.warns(UserWarning, match="other"):
        assert isinstance(scorer_for_model(card), ProbabilityScorer)


def test_model_without_detection_card_scores_by_probability(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert isinstance(scorer_for_model(dataclasses.replace(fake_model().card, folder=tmp_path)), ProbabilityScorer)
        assert isinstance(scorer_for_model(fake_model().card), ProbabilityScorer)


def test_altered_scorer_weights_or_broken_card_are_refused(tmp_path):
    card = _model_folder(tmp_path, fitted_on=fake_model().card.weights["sha256"])
    weights = tmp_path / "fp_reduction.safetensors"
    weights.write_bytes(weights.read_bytes() + b" ")
    with pytest.raises(InputError, match="SHA-256"):
        scorer_for_model(card)
    (tmp_path / DETECTION_CARD).write_text('{"fp_reduction": {"file": "fp_reduction.safetensors"}}')
    with pytest.raises(InputError, match="detection card"):
        scorer_for_model(card)
