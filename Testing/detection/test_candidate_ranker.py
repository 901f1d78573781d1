"""The learned candidate order: features of every LoG maximum, the order a ranker imposes,
the ranker's training on tiny data, and its safe loading."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from MedSegAILib.detection.candidate_ranker import CandidateRanker, load_ranker, ranker_from_card, save_ranker
from MedSegAILib.detection.candidates import FEATURE_NAMES, find_candidates, peak_table
from MedSegAILib.detection.froc import ReferenceNodule
from MedSegAILib.detection.nodule_scorer import DETECTION_CARD
from MedSegAILib.detection.ranker_training import peak_samples, train_ranker
from MedSegAILib.errors import InputError
from MedSegAILib.models.weights import sha256_of_file

from .synthetic import ellipsoid_mask, grid

FAINT_CENTRE = (20.0, 60.0, 40.0)
SOLID_CENTRE = (80.0, 60.0, 40.0)


@pytest.fixture(scope="module")
def lung_with_two_nodules():
    """A 2 mm model grid of lung (-850 HU) with a solid 8 mm nodule (+40 HU) and a faint 10 mm
    ground-glass nodule (-600 HU) far apart."""
    image = grid((40, 60, 50), (2.0, 2.0, 2.0), fill=-850.0)
    image.array[ellipsoid_mask(image, SOLID_CENTRE, (4.0, 4.0, 4.0))] = 40.0
    image.array[ellipsoid_mask(image, FAINT_CENTRE, (5.0, 5.0, 5.0))] = -600.0
    region = np.zeros(image.array.shape, dtype=bool)
    region[4:-4, 4:-4, 4:-4] = True
    return image, region


def _hu_feature(name: str = "hu_at_1.8mm") -> int:
    return FEATURE_NAMES.index(name)


def test_every_maximum_has_one_value_per_named_feature(lung_with_two_nodules):
    image, region = lung_with_two_nodules
    table = peak_table(image, region)
    assert table.features.shape == (len(table.points), len(FEATURE_NAMES))
    assert np.isfinite(table.features).all()
    assert set(np.unique(table.windows)) == {0, 1}
    assert np.all(region[tuple(table.points.T)])
    solid = np.argmax(table.features[:, _hu_feature()])
    assert np.linalg.norm(image.ijk_to_lps(table.points[solid][::-1].astype(float)) - SOLID_CENTRE) <= 2.0


def test_without_a_ranker_the_solid_nodule_comes_first(lung_with_two_nodules):
    image, region = lung_with_two_nodules
    first = find_candidates(image, region, max_candidates=1)[0]
    assert np.linalg.norm(np.subtract(first.center_lps, SOLID_CENTRE)) <= 2.0


def test_a_ranker_decides_the_first_places_and_the_solid_window_keeps_every_third(lung_with_two_nodules):
    image, region = lung_with_two_nodules
    darkest_blob_first = lambda features: -np.abs(features[:, _hu_feature()] + 0.6)  # noqa: E731  (HU near -600 first)
    candidates = find_candidates(image, region, max_candidates=3, ranker=darkest_blob_first)
    assert np.linalg.norm(np.subtract(candidates[0].center_lps, FAINT_CENTRE)) <= 2.0
    assert any(np.linalg.norm(np.subtract(c.center_lps, SOLID_CENTRE)) <= 2.0 for c in candidates)
    assert [c.rank for c in candidates] == [0, 1, 2]


def test_each_nodule_weighs_one_however_many_maxima_it_holds(lung_with_two_nodules):
    image, region = lung_with_two_nodules
    lungs = image.array < -500
    nodules = [ReferenceNodule(SOLID_CENTRE, 8.0), ReferenceNodule(FAINT_CENTRE, 10.0)]
    features, weights = peak_samples(image, lungs, nodules)
    assert len(features) == len(weights)
    assert weights.sum() == pytest.approx(2.0)
    assert 0 < (weights > 0).sum() < len(weights)


def test_training_on_tiny_data_ranks_nodule_maxima_first():
    rng = np.random.default_rng(0)
    features = rng.normal(size=(4000, len(FEATURE_NAMES))).astype(np.float32)
    positive = features[:, 3] + 0.5 * features[:, 12] > 1.5
    weights = np.where(positive, 1.0 / positive.sum(), 0.0)
    ranker = train_ranker(features, weights, steps=150, batch=512)
    scores = ranker.scores(features)
    top = np.argsort(-scores)[: positive.sum()]
    assert positive[top].mean() > 0.8
    with pytest.raises(ValueError, match="maxima on nodules"):
        train_ranker(features, np.zeros(len(features)), steps=1)


def _write_ranker(folder) -> CandidateRanker:
    torch.manual_seed(0)
    ranker = CandidateRanker().eval()
    save_ranker(ranker, folder / "r.safetensors")
    card = {"candidate_ranker": {"file": "r.safetensors", "sha256": sha256_of_file(folder / "r.safetensors"),
                                 "features": list(FEATURE_NAMES)}}
    (folder / DETECTION_CARD).write_text(json.dumps(card))
    return ranker


def test_a_ranker_loads_back_the_same_and_an_altered_file_is_refused(tmp_path):
    ranker = _write_ranker(tmp_path)
    loaded = ranker_from_card(tmp_path, json.loads((tmp_path / DETECTION_CARD).read_text()))
    features = np.random.default_rng(1).normal(size=(50, len(FEATURE_NAMES))).astype(np.float32)
    np.testing.assert_array_equal(loaded.scores(features), ranker.scores(features))
    (tmp_path / "r.safetensors").write_bytes((tmp_path / "r.safetensors").read_bytes() + b" ")
    with pytest.raises(InputError, match="SHA-256"):
        load_ranker(tmp_path / "r.safetensors", sha256_of_file(tmp_path / "r.safetensors")[::-1])


def test_a_ranker_trained_on_other_features_is_refused_and_no_entry_means_the_classical_order(tmp_path):
    _write_ranker(tmp_path)
    card = json.loads((tmp_path / DETECTION_CARD).read_text())
    card["candidate_ranker"]["features"] = list(FEATURE_NAMES[:-1])
    with pytest.raises(InputError, match="other features"):
        ranker_from_card(tmp_path, card)
    assert ranker_from_card(tmp_path, {}) is None
