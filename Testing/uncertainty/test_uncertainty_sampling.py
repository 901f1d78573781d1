"""Monte-Carlo dropout sampling: exact dropout semantics, one network per sample, determinism."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
import torch
from MedSegAILib.inference.engine import segment_volume
from MedSegAILib.models.networks import ChestUNet3D
from MedSegAILib.uncertainty.head_sampling import (
    BatchedDropoutHead,
    FactorisedDropoutHead,
    head_sampler,
    is_factorisable,
)
from MedSegAILib.uncertainty.input_grid import maps_on_input_grid
from MedSegAILib.uncertainty.maps import voxel_uncertainty
from MedSegAILib.uncertainty.mc_dropout import SAMPLE_BELOW, AgreementRegion, estimate_uncertainty


def explicit_dropout_head(
    network: ChestUNet3D, features: torch.Tensor, first: torch.Tensor, second: torch.Tensor
) -> torch.Tensor:
    """The head with the given channel masks applied by hand (the definition of a sample)."""
    layers = network.head_layers
    hidden = layers[2](layers[1](features[None] * first.view(1, -1, 1, 1, 1)))
    return layers[4](hidden * second.view(1, -1, 1, 1, 1))[0]


def test_factorised_head_equals_dropout_applied_sample_by_sample():
    torch.manual_seed(3)
    network = ChestUNet3D(1, 4, (8, 16), head_dropout=0.3).eval()
    assert is_factorisable(network.head_layers)
    sampler = FactorisedDropoutHead(network.head_layers, 6, torch.Generator().manual_seed(1))
    features = torch.randn(8, 7, 8, 9)
    with torch.no_grad():
        fast = sampler(features)
        for n in range(6):
            expected = explicit_dropout_head(
                network, features, sampler.masks_first[n], sampler.masks_second[n]
            )
            torch.testing.assert_close(fast[n], expected[:, 1:-1, 1:-1, 1:-1], atol=1e-5, rtol=1e-5)
    dropped = (sampler.masks_first == 0).float().mean().item()
    assert 0.05 < dropped < 0.6  # about p of the channels are dropped
    kept = sampler.masks_first[sampler.masks_first != 0]
    torch.testing.assert_close(kept, torch.full_like(kept, 1 / 0.7))  # inverted dropout scaling


def test_batched_head_draws_the_same_masks_for_every_chunk():
    torch.manual_seed(0)
    network = ChestUNet3D(1, 4, (8, 16)).eval()
    sampler = BatchedDropoutHead(network.head_layers, 5, seed=7)
    features = torch.randn(8, 10, 6, 6)
    with torch.no_grad():
        whole = sampler(features)
        upper, lower = sampler(features[:, :6]), sampler(features[:, 4:])
    assert sampler.halo == 1
    torch.testing.assert_close(whole[:, :, :4], upper[:, :, :4])
    torch.testing.assert_close(whole[:, :, 4:], lower)
    assert not any(module.training for module in network.modules())  # dropout switched back off


def test_maps_identical_samples_have_no_mutual_information():
    p = torch.tensor([0.7, 0.2, 0.1, 0.0])
    samples = p[None, :, None].expand(5, 4, 3)  # 5 samples, 4 classes, 3 voxels
    maps = voxel_uncertainty(samples)
    expected = -sum(float(v) * math.log(float(v)) for v in p if v > 0)
    torch.testing.assert_close(maps.entropy, torch.full((3,), expected))
    torch.testing.assert_close(maps.mutual_information, torch.zeros(3), atol=1e-6, rtol=0)
    torch.testing.assert_close(maps.variance, torch.zeros(3))


def test_maps_confident_samples_that_disagree_are_all_epistemic():
    samples = torch.zeros(4, 2, 1)
    samples[:2, 0, 0] = 1.0
    samples[2:, 1, 0] = 1.0
    maps = voxel_uncertainty(samples)
    assert maps.entropy.item() == pytest.approx(math.log(2))
    assert maps.mutual_information.item() == pytest.approx(math.log(2))
    assert maps.variance.item() == pytest.approx(0.25)
    assert maps.votes[:, 0].tolist() == [0, 0, 1, 1]


def test_chunking_does_not_change_the_maps(segmentation, random_model):
    whole = estimate_uncertainty(segmentation, random_model, 4, chunk_voxels=10**9)
    chunked = estimate_uncertainty(segmentation, random_model, 4, chunk_voxels=4000)
    np.testing.assert_allclose(whole.entropy, chunked.entropy, atol=1e-5)
    np.testing.assert_allclose(whole.mutual_information, chunked.mutual_information, atol=1e-5)


def test_same_seed_same_maps_other_seed_other_maps(segmentation, random_model):
    first = estimate_uncertainty(segmentation, random_model, 4, seed=1)
    again = estimate_uncertainty(segmentation, random_model, 4, seed=1)
    other = estimate_uncertainty(segmentation, random_model, 4, seed=2)
    np.testing.assert_array_equal(first.entropy, again.entropy)
    assert not np.array_equal(first.entropy, other.entropy)


def test_maps_are_on_the_model_grid_in_range(segmentation, random_model):
    result = estimate_uncertainty(segmentation, random_model, 3)
    shape = segmentation.model_labels.shape
    for values in (result.entropy, result.mutual_information, result.variance):
        assert values.shape == shape and values.dtype == np.float32
    assert 0.0 <= result.entropy.min() and result.entropy.max() <= math.log(4) + 1e-5
    assert np.all(result.mutual_information <= result.entropy + 1e-5)
    assert result.mean_probabilities.shape == segmentation.probabilities.shape
    np.testing.assert_allclose(result.mean_probabilities.astype(np.float32).sum(0), 1.0, atol=1e-2)


def test_agreement_is_a_dice_per_sample_and_one_for_an_empty_region(segmentation, random_model):
    everywhere = np.ones(segmentation.model_labels.shape, dtype=bool)
    result = estimate_uncertainty(
        segmentation, random_model, 3, regions={"all": AgreementRegion(0, everywhere)}
    )
    assert result.agreement["all"].shape == (3,)
    assert np.all((0.0 <= result.agreement["all"]) & (result.agreement["all"] <= 1.0))
    empty = estimate_uncertainty(
        segmentation, random_model, 2, regions={"none": AgreementRegion(1, ~everywhere)}
    )
    assert empty.agreement["none"].tolist() == [1.0, 1.0]


def test_plain_segmentation_stays_deterministic(phantom, random_model, segmentation):
    estimate_uncertainty(segmentation, random_model, 4)
    first = segment_volume(phantom, random_model)
    second = segment_volume(phantom, random_model)
    np.testing.assert_array_equal(first.probabilities, second.probabilities)
    np.testing.assert_array_equal(first.probabilities, segmentation.probabilities)
    assert not any(module.training for module in random_model.network.modules())


def test_refuses_one_sample_and_missing_features(phantom, random_model, segmentation):
    with pytest.raises(ValueError, match="at least 2"):
        estimate_uncertainty(segmentation, random_model, 1)
    plain = segment_volume(phantom, random_model)
    with pytest.raises(ValueError, match="keep_features"):
        estimate_uncertainty(plain, random_model, 4)
    with pytest.raises(ValueError, match="features\\(\\)/head\\(\\)"):
        head_sampler(torch.nn.Conv3d(1, 1, 1), 4, 0, torch.device("cpu"))


def test_voxels_confident_in_the_deterministic_pass_are_taken_as_certain(segmentation, random_model):
    everywhere = np.ones(segmentation.model_labels.shape, dtype=bool)
    none_sampled = estimate_uncertainty(
        segmentation, random_model, 3, sample_below=0.0, regions={"all": AgreementRegion(1, everywhere)}
    )
    all_sampled = estimate_uncertainty(segmentation, random_model, 3, sample_below=1.0)
    assert not none_sampled.mutual_information.any()
    np.testing.assert_allclose(none_sampled.mean_probabilities, segmentation.probabilities)
    assert none_sampled.agreement["all"].tolist() == [1.0, 1.0, 1.0]
    assert all_sampled.mutual_information.any()
    threshold = float(np.median(segmentation.probabilities.max(axis=0)))
    partly = estimate_uncertainty(segmentation, random_model, 3, sample_below=threshold)
    sampled = segmentation.probabilities.max(axis=0) < threshold
    assert sampled.any() and (~sampled).any()
    np.testing.assert_allclose(partly.entropy[sampled], all_sampled.entropy[sampled], atol=1e-5)
    np.testing.assert_array_equal(partly.mutual_information[~sampled], 0.0)


def test_unsampled_voxels_are_certain_and_the_box_holds_every_segment(segmentation, random_model):
    result = estimate_uncertainty(segmentation, random_model, 3)
    box = np.zeros(segmentation.model_labels.shape, dtype=bool)
    box[result.sampled_box] = True
    assert box[segmentation.model_labels > 0].all()
    sampled = box & (segmentation.probabilities.max(axis=0) < SAMPLE_BELOW)
    assert result.sampled_voxels == int(sampled.sum()) > 0
    for values in (result.entropy, result.mutual_information, result.variance):
        assert not values[~sampled].any()
    np.testing.assert_array_equal(
        result.mean_probabilities[:, ~sampled], segmentation.probabilities[:, ~sampled]
    )


def test_maps_on_the_input_grid_equal_resampling_each_whole_map(segmentation):
    rng = np.random.default_rng(0)
    shape = segmentation.model_labels.shape
    box = tuple(slice(n // 4, n // 4 + max(2, n // 3)) for n in shape)
    maps = []
    for _ in range(2):
        values = np.zeros(shape, dtype=np.float32)
        values[box] = rng.random(values[box].shape, dtype=np.float32)
        maps.append(values)
    fast = maps_on_input_grid(segmentation, maps, box)
    for index, values in enumerate(maps):
        on_input = fast.full(index)
        assert on_input.shape == segmentation.labels.array.shape and on_input.dtype == np.float32
        np.testing.assert_allclose(on_input, segmentation.to_input_grid(values), atol=1e-5)


def test_maps_on_an_input_grid_with_other_axes_equal_resampling_each_whole_map(phantom, random_model):
    flipped = replace(
        phantom, direction=np.diag([-1.0, 1.0, 1.0])
    )  # not the model grid's axes: the SimpleITK path
    segmentation = segment_volume(flipped, random_model)
    shape = segmentation.model_labels.shape
    box = tuple(slice(1, n - 1) for n in shape)
    values = np.zeros(shape, dtype=np.float32)
    values[box] = np.random.default_rng(1).random(values[box].shape, dtype=np.float32)
    on_input = maps_on_input_grid(segmentation, [values], box).full(0)
    np.testing.assert_allclose(on_input, segmentation.to_input_grid(values), atol=1e-5)
