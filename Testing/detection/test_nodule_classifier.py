"""The patch classifier: patches in patient space, training on tiny data, calibration, safe loading."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from medsegai_lab.classifier_training import train, train_ensemble
from MedSegAILib.detection.nodule_scorer import (
    BUILTIN_FOLDER,
    DETECTION_CARD,
    NoduleScorer,
    calibrate,
    fit_platt,
    fit_rank_weight,
    fuse,
    read_detection_card,
    scorer_for_model,
)
from MedSegAILib.detection.patch_classifier import (
    PATCH_SPACING_MM,
    PATCH_VOXELS,
    NoduleClassifier,
    NoduleEnsemble,
    extract_patches,
    fused_for_inference,
    load_classifier,
    patch_logits,
    save_classifier,
)
from MedSegAILib.errors import InputError
from MedSegAILib.models.weights import sha256_of_file

from .synthetic import ellipsoid_mask, grid, rotation


def test_patches_are_centred_on_the_lps_point_whatever_the_grid():
    image = grid(
        (40, 50, 60), (0.8, 0.9, 1.7), origin=(10.0, -20.0, 5.0), direction=rotation("z", 30), fill=-850.0
    )
    center = image.ijk_to_lps([30.0, 25.0, 20.0])
    image.array[ellipsoid_mask(image, center, (4.0, 4.0, 4.0))] = 40.0
    patch = extract_patches(image, np.array([center]))[0]
    assert patch.shape == (PATCH_VOXELS,) * 3
    dense = np.argwhere(patch > -400).mean(axis=0)
    assert np.allclose(dense, (PATCH_VOXELS - 1) / 2.0, atol=0.5)
    # 8 mm ball: about 8 / PATCH_SPACING_MM samples across (each edge may gain or lose one).
    assert (patch[PATCH_VOXELS // 2, PATCH_VOXELS // 2] > -400).sum() * PATCH_SPACING_MM == pytest.approx(
        8.0, abs=2 * PATCH_SPACING_MM
    )


def _toy_patches(rng: np.random.Generator, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Balls (label 1) and long rods (label 0) of random size in -850 HU lung."""
    image = grid((PATCH_VOXELS,) * 3, (PATCH_SPACING_MM,) * 3, fill=-850.0)
    middle = image.ijk_to_lps([(PATCH_VOXELS - 1) / 2.0] * 3)
    patches, labels = [], []
    for index in range(count):
        radius = rng.uniform(2.5, 6.0)
        if index % 2:
            mask = ellipsoid_mask(image, middle, (radius,) * 3)
        else:
            mask = ellipsoid_mask(
                image,
                middle,
                (radius, radius, 40.0),
                rotation("x", rng.uniform(0, 90)) @ rotation("z", rng.uniform(0, 90)),
            )
        patch = np.where(mask, 40.0, -850.0) + rng.normal(0, 20, image.array.shape)
        patches.append(patch.astype(np.float32))
        labels.append(index % 2)
    return np.stack(patches), np.array(labels, dtype=np.int8)


def test_training_on_tiny_data_learns_balls_from_rods():
    rng = np.random.default_rng(0)
    patches, labels = _toy_patches(rng, 48)
    network = train(patches, labels, steps=60, batch=16, log=lambda *a, **k: None)
    test_patches, test_labels = _toy_patches(np.random.default_rng(1), 20)
    scores = NoduleScorer(network).score(test_patches, np.zeros(len(test_patches)))
    assert scores[test_labels == 1].min() > scores[test_labels == 0].max()


def test_an_ensemble_learns_from_tiny_data_and_scores_its_members_mean_logit():
    patches, labels = _toy_patches(np.random.default_rng(0), 48)
    ensemble = train_ensemble(patches, labels, steps=60, members=2, batch=16, log=lambda *a, **k: None)
    assert isinstance(ensemble, NoduleEnsemble) and len(ensemble.members) == 2 and not ensemble.training
    first, second = (dict(member.state_dict()) for member in ensemble.members)
    assert not torch.equal(first["features.0.0.weight"], second["features.0.0.weight"]), (
        "members share a seed"
    )
    test_patches, test_labels = _toy_patches(np.random.default_rng(1), 20)
    members = [patch_logits(member, test_patches) for member in ensemble.members]
    assert np.allclose(patch_logits(ensemble, test_patches), np.mean(members, axis=0), atol=1e-5)
    assert np.allclose(
        patch_logits(fused_for_inference(ensemble), test_patches), np.mean(members, axis=0), atol=1e-4
    )
    scores = NoduleScorer(ensemble).score(test_patches, np.zeros(len(test_patches)))
    assert scores[test_labels == 1].min() > scores[test_labels == 0].max()


def test_one_member_is_a_plain_classifier_and_an_empty_ensemble_is_refused():
    patches, labels = _toy_patches(np.random.default_rng(0), 16)
    assert isinstance(
        train_ensemble(patches, labels, steps=2, members=1, batch=8, log=lambda *a, **k: None),
        NoduleClassifier,
    )
    with pytest.raises(ValueError, match="at least one member"):
        NoduleEnsemble(0)


def test_an_ensemble_file_loads_back_as_the_same_ensemble(tmp_path):
    torch.manual_seed(0)
    ensemble = NoduleEnsemble(3).eval()
    save_classifier(ensemble, tmp_path / "e.safetensors")
    loaded = load_classifier(tmp_path / "e.safetensors", sha256_of_file(tmp_path / "e.safetensors"))
    assert isinstance(loaded, NoduleEnsemble) and len(loaded.members) == 3
    patches, _ = _toy_patches(np.random.default_rng(3), 4)
    assert np.array_equal(patch_logits(loaded, patches), patch_logits(ensemble, patches))


def test_platt_scaling_recovers_a_known_calibration():
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 3, 20000)
    labels = rng.random(20000) < calibrate(logits, 0.7, -2.0)
    slope, intercept = fit_platt(logits, labels)
    assert slope == pytest.approx(0.7, abs=0.05) and intercept == pytest.approx(-2.0, abs=0.1)
    with pytest.raises(ValueError):
        fit_platt(logits, np.zeros(20000))


def test_the_rank_weight_recovers_how_labels_depend_on_logit_and_rank():
    rng = np.random.default_rng(0)
    logits, ranks = rng.normal(0, 2, 20000), rng.integers(0, 300, 20000)
    labels = rng.random(20000) < calibrate(fuse(logits, ranks, -0.6), 0.8, 0.5)
    assert fit_rank_weight(logits, ranks, labels) == pytest.approx(-0.6, abs=0.05)


def test_a_better_ranked_candidate_scores_higher_for_the_same_patch():
    torch.manual_seed(0)
    scorer = NoduleScorer(NoduleClassifier().eval(), slope=1.0, intercept=0.0, rank_weight=-0.5)
    patch = np.full((2, PATCH_VOXELS, PATCH_VOXELS, PATCH_VOXELS), -850.0, np.float32)
    first, hundredth = scorer.score(patch, np.array([0, 99]))
    assert first > hundredth
    assert np.log(first / (1 - first)) - np.log(hundredth / (1 - hundredth)) == pytest.approx(
        0.5 * np.log(100), rel=1e-4
    )


def _write_classifier(folder, network: NoduleClassifier) -> None:
    save_classifier(network, folder / "c.safetensors")
    card = {
        "nodule_classifier": {
            "file": "c.safetensors",
            "sha256": sha256_of_file(folder / "c.safetensors"),
            "calibration": {"slope": 0.5, "intercept": -1.0},
            "fusion": {"rank_weight": -0.25},
        }
    }
    (folder / DETECTION_CARD).write_text(json.dumps(card))


def test_a_model_folder_ships_its_own_classifier_and_an_altered_file_is_refused(tmp_path):
    import dataclasses

    from .fake_model import fake_model

    torch.manual_seed(0)
    network = NoduleClassifier().eval()
    _write_classifier(tmp_path, network)
    card = dataclasses.replace(fake_model().card, folder=tmp_path)
    scorer = scorer_for_model(card)
    assert (scorer.slope, scorer.intercept, scorer.rank_weight) == (0.5, -1.0, -0.25)
    for name, tensor in network.state_dict().items():
        assert torch.equal(scorer.network.state_dict()[name], tensor)
    (tmp_path / "c.safetensors").write_bytes((tmp_path / "c.safetensors").read_bytes() + b" ")
    with pytest.raises(InputError, match="SHA-256"):
        scorer_for_model(card)
    (tmp_path / DETECTION_CARD).write_text("{}")
    with pytest.raises(InputError, match="detection card"):
        read_detection_card(tmp_path / DETECTION_CARD)


def _card_with(folder, key: str, value) -> None:
    """A valid classifier card in ``folder`` with ``nodule_classifier[key]`` set to ``value``."""
    torch.manual_seed(0)
    _write_classifier(folder, NoduleClassifier().eval())
    card = json.loads((folder / DETECTION_CARD).read_text())
    card["nodule_classifier"][key] = value
    (folder / DETECTION_CARD).write_text(json.dumps(card))


def test_a_card_with_a_malformed_fusion_is_refused(tmp_path):
    _card_with(tmp_path, "fusion", {"rank_weight": "strong"})
    with pytest.raises(InputError, match="rank_weight"):
        read_detection_card(tmp_path / DETECTION_CARD)


def test_a_classifier_trained_on_patches_of_another_spacing_is_refused(tmp_path):
    _card_with(tmp_path, "patch_spacing_mm", PATCH_SPACING_MM + 1.0)
    with pytest.raises(InputError, match="trained on patches sampled at"):
        read_detection_card(tmp_path / DETECTION_CARD)


def test_the_built_in_classifier_is_shipped_with_its_checksum():
    entry = read_detection_card(BUILTIN_FOLDER / DETECTION_CARD)
    network = load_classifier(BUILTIN_FOLDER / entry["file"], entry["sha256"])
    assert isinstance(network, (NoduleClassifier, NoduleEnsemble)) and not network.training
    assert (BUILTIN_FOLDER / entry["file"]).stat().st_size < 1_000_000


def test_a_model_without_its_own_classifier_uses_the_built_in_one(tmp_path):
    from .fake_model import fake_model

    scorer = scorer_for_model(fake_model().card)
    entry = read_detection_card(BUILTIN_FOLDER / DETECTION_CARD)
    assert scorer.slope == entry["calibration"]["slope"]


def test_out_of_fold_logits_come_from_networks_that_never_saw_the_host():
    from medsegai_lab.classifier_training import candidate_ranks, out_of_fold_logits
    from medsegai_lab.uncertainty_evaluation import auroc

    patches, labels = _toy_patches(np.random.default_rng(2), 64)
    scans = [{"candidates": 14}, {"candidates": 14}, {"candidates": 14}, {"candidates": 14}]
    scan_ids = np.repeat(np.arange(4), 16)  # each scan: 14 candidates, then 2 extra patches
    ranks, candidates = candidate_ranks(scan_ids, scans)
    assert (
        ranks[:17].tolist() == list(range(16)) + [0]
        and candidates.sum() == 56
        and not candidates[14:16].any()
    )
    hosts = scan_ids // 2
    logits = out_of_fold_logits(patches, labels, hosts, candidates, steps=60, log=lambda *a, **k: None)
    assert np.isnan(logits[~candidates]).all() and np.isfinite(logits[candidates]).all()
    assert auroc(logits[candidates], labels[candidates]) > 0.9
