"""Grad-CAM plumbing: windows, stitching, the kept-feature path against MONAI, outputs in [0, 1]."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from MedSegAILib.errors import InputError
from MedSegAILib.explain.gradcam import DEFAULT_LAYER, gradcam_on_model_grid, normalised_on_input_grid
from MedSegAILib.explain.storage import STORAGE_STEP, quantised_for_storage
from MedSegAILib.explain.targets import findings_on_model_grid, raw_class_by_label, segment_gradcam
from MedSegAILib.inference.engine import segment_volume
from MedSegAILib.inference.sliding_window import plan_tiles

SMALL_TILES = {"max_tile_voxels": 20000, "margin": 2}


@pytest.fixture(scope="module")
def tiled(phantom, random_model):
    """The phantom segmented in several small windows, features kept."""
    return segment_volume(phantom, random_model, keep_features=True, **SMALL_TILES)


def corner_target(shape) -> np.ndarray:
    target = np.zeros(shape, dtype=bool)
    target[2:6, 3:7, 4:9] = True
    return target


def test_only_windows_that_own_target_voxels_are_computed(tiled, random_model):
    target = corner_target(tiled.model_labels.shape)
    cam = gradcam_on_model_grid(tiled, random_model, target, 1, **SMALL_TILES)
    assert cam.windows_total == tiled.windows > 1
    assert 1 <= cam.windows_run < cam.windows_total
    shape = tiled.model_labels.shape
    padded = [n + (-n) % 2 for n in shape]
    for tile in itertools.product(
        *plan_tiles(padded, SMALL_TILES["max_tile_voxels"], SMALL_TILES["margin"], 2)
    ):
        own = tuple(slice(min(o0, n), min(o1, n)) for (_, _, o0, o1), n in zip(tile, shape))
        if not target[own].any():
            assert not cam.values[own].any()  # a window without target voxels has a zero map
    assert cam.values.min() >= 0.0 and cam.values.max() > 0.0


def test_kept_feature_path_matches_monai_gradcam_rerun_at_decoder_0(phantom, tiled, random_model):
    target = corner_target(tiled.model_labels.shape)
    fast = gradcam_on_model_grid(tiled, random_model, target, 2, **SMALL_TILES)
    without_features = segment_volume(phantom, random_model, **SMALL_TILES)
    rerun = gradcam_on_model_grid(without_features, random_model, target, 2, volume=phantom, **SMALL_TILES)
    assert fast.layer == rerun.layer == DEFAULT_LAYER
    assert np.corrcoef(fast.values.ravel(), rerun.values.ravel())[0, 1] > 0.99


def test_other_layers_run_through_monai_and_leave_no_hooks(phantom, tiled, random_model):
    target = corner_target(tiled.model_labels.shape)
    cam = gradcam_on_model_grid(
        tiled, random_model, target, 1, layer="encoder.1", volume=phantom, **SMALL_TILES
    )
    assert cam.layer == "encoder.1" and cam.values.max() > 0.0
    for module in random_model.network.modules():
        assert not module._forward_hooks and not module._backward_hooks


def test_unknown_layer_is_refused(tiled, random_model):
    with pytest.raises(InputError, match="no such layer"):
        gradcam_on_model_grid(
            tiled, random_model, corner_target(tiled.model_labels.shape), 1, layer="decoder.9"
        )


def test_map_on_the_input_grid_is_float32_in_0_1(phantom, segmentation, random_model):
    values, raw = segment_gradcam(segmentation, random_model, "left lung")
    assert values.shape == phantom.array.shape and values.dtype == np.float32
    if raw.windows_run:
        assert values.max() == pytest.approx(1.0) and values.min() >= 0.0
    else:  # the random model predicted no left lung: an all-zero map
        assert not values.any()


def test_empty_target_gives_an_all_zero_map(segmentation, random_model):
    empty = np.zeros(segmentation.model_labels.shape, dtype=bool)
    cam = gradcam_on_model_grid(segmentation, random_model, empty, 1)
    assert cam.windows_run == 0 and not cam.values.any()
    assert not normalised_on_input_grid(segmentation, cam.values).any()


def test_split_lungs_explain_the_raw_lung_class(random_model):
    raw = raw_class_by_label(random_model.card)
    left, right, nodule = (
        random_model.card.label(name).value for name in ("left lung", "right lung", "lung nodule")
    )
    assert raw[left] == raw[right] == 1 and raw[nodule] == 2


def test_findings_are_carried_to_the_model_grid(phantom, segmentation):
    labels = np.zeros(phantom.array.shape, dtype=np.uint8)
    labels[4:7, 5:8, 6:9] = 1
    labels[8:10, 3:5, 20:23] = 2
    centers = [phantom.ijk_to_lps(np.array([7.0, 6.0, 5.0])), phantom.ijk_to_lps(np.array([21.0, 3.5, 8.5]))]
    masks = findings_on_model_grid(segmentation, labels, centers)
    assert len(masks) == 2 and all(mask.any() for mask in masks)
    assert not (masks[0] & masks[1]).any()


def test_stored_maps_are_float32_multiples_of_the_storage_step():
    values = np.random.default_rng(0).random((4, 5, 6)).astype(np.float32)
    stored = quantised_for_storage(values.copy())
    assert stored.dtype == np.float32
    assert np.abs(stored - values).max() <= STORAGE_STEP / 2 + 1e-7
    np.testing.assert_array_equal(stored / STORAGE_STEP, np.rint(stored / STORAGE_STEP))
