"""Grad-CAM of detection findings (the patch classifier's logit): geometry, MONAI hooks, [0, 1] maps.

Random classifier weights: plumbing only (the shipped classifier is checked in test_sanity_checks.py).
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from MedSegAILib.detection.detector import detect_nodules
from MedSegAILib.detection.nodule_scorer import NoduleScorer, calibrate, fuse
from MedSegAILib.detection.patch_classifier import (
    PATCH_SPACING_MM,
    PATCH_VOXELS,
    NoduleEnsemble,
    extract_patches,
    normalize,
    patch_logits,
)
from MedSegAILib.errors import InputError
from MedSegAILib.explain.finding_gradcam import (
    DEFAULT_FINDING_LAYER,
    check_finding_layer,
    finding_layers,
    findings_gradcam,
    patch_center,
    patch_gradcam,
    patch_on_grid,
    patch_volume,
)
from MedSegAILib.io import Volume
from scipy.spatial.transform import Rotation

HALF_PATCH_MM = PATCH_VOXELS * PATCH_SPACING_MM / 2.0


def oblique_grid(shape=(80, 100, 80), spacing=(1.6, 1.2, 2.0)) -> Volume:
    direction = Rotation.from_euler("xyz", [20, -10, 35], degrees=True).as_matrix() @ np.diag(
        [1.0, -1.0, 1.0]
    )
    return Volume(np.zeros(shape, dtype=np.float32), spacing, (-30.0, 12.0, -40.0), direction)


def test_a_patch_map_goes_back_to_where_its_patch_was_sampled():
    """extract_patches, then patch_volume + patch_on_grid, reproduce a linear field
    (exact under linear interpolation)."""
    grid = oblique_grid()
    lps = grid.ijk_to_lps(np.argwhere(np.ones(grid.array.shape, bool))[:, ::-1]).reshape(
        grid.array.shape + (3,)
    )
    field = lps @ np.array([0.5, -0.25, 0.75]) + 100.0
    grid.array[:] = field
    center = grid.ijk_to_lps(np.array([40.0, 50.0, 40.0]))  # the rotated patch lies inside the grid
    patch = extract_patches(grid, center[None])[0]
    block, values = patch_on_grid(patch_volume(center, patch), grid)
    local_lps = lps[block]
    offset = np.abs(local_lps - center).max(axis=-1)
    inside = offset <= HALF_PATCH_MM - PATCH_SPACING_MM
    outside = offset > HALF_PATCH_MM + 1e-3
    assert inside.sum() > 1000 and outside.any()
    np.testing.assert_allclose(values[inside], field[block][inside], atol=1e-2)
    assert not values[outside].any()


def test_a_patch_outside_the_grid_covers_nothing():
    grid = oblique_grid()
    block, values = patch_on_grid(patch_volume((1000.0, 0.0, 0.0), np.ones((PATCH_VOXELS,) * 3)), grid)
    assert values.size == 0


def test_patch_gradcam_explains_the_logit_and_leaves_the_network_untouched(random_classifier):
    network = random_classifier
    before = {name: tensor.clone() for name, tensor in network.state_dict().items()}
    patches = (
        np.random.default_rng(0)
        .uniform(-1000, 300, (3, PATCH_VOXELS, PATCH_VOXELS, PATCH_VOXELS))
        .astype(np.float32)
    )
    maps, logits = patch_gradcam(network, patches)
    assert maps.shape == patches.shape and maps.dtype == np.float32 and maps.min() >= 0.0 and maps.max() > 0.0
    np.testing.assert_allclose(logits, patch_logits(network, patches), rtol=1e-5, atol=1e-5)
    assert not network.training
    assert all(not module._forward_hooks and not module._backward_hooks for module in network.modules())
    for name, tensor in network.state_dict().items():
        assert torch.equal(tensor, before[name])


class Logit(torch.nn.Module):
    """The classifier with a class axis, as MONAI's CAM classes expect: ``(n,)`` logits -> ``(n, 1)``."""

    def __init__(self, network: torch.nn.Module) -> None:
        super().__init__()
        self.network = network

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.network(x)[:, None]


def logit_model(network: torch.nn.Module) -> Logit:
    """A copy of ``network`` wrapped as :class:`Logit`, in eval mode."""
    return Logit(copy.deepcopy(network)).eval()


@pytest.mark.parametrize("layer", ["features.6", "features.3"])
def test_the_gradcam_method_equals_monai_gradcam(random_classifier, layer):
    from monai.visualize import GradCAM

    patches = np.random.default_rng(2).uniform(-1000, 300, (2,) + (PATCH_VOXELS,) * 3).astype(np.float32)
    ours, _ = patch_gradcam(random_classifier, patches, layer, method="gradcam")
    wrapped = logit_model(random_classifier)
    cam = GradCAM(nn_module=wrapped, target_layers=f"network.{layer}", postprocessing=lambda values: values)
    theirs = cam(torch.from_numpy(normalize(patches))[:, None], class_idx=0)[:, 0].detach().numpy()
    np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-6 * float(np.abs(theirs).max()))


@pytest.mark.parametrize("layer", [DEFAULT_FINDING_LAYER, "features.6"])
def test_the_layercam_method_weights_each_cell_by_its_own_positive_gradient(random_classifier, layer):
    """LayerCAM (Jiang et al. 2021), checked against activations and gradients captured by MONAI's hooks."""
    from monai.visualize.class_activation_maps import ModelWithHooks

    patches = np.random.default_rng(3).uniform(-1000, 300, (2,) + (PATCH_VOXELS,) * 3).astype(np.float32)
    ours, _ = patch_gradcam(random_classifier, patches, layer, method="layercam")
    hooked = ModelWithHooks(
        logit_model(random_classifier), f"network.{layer}", register_forward=True, register_backward=True
    )
    _, (activation,), (gradient,) = hooked(torch.from_numpy(normalize(patches))[:, None], class_idx=0)
    cam = torch.relu((torch.relu(gradient) * activation).sum(dim=1, keepdim=True))
    theirs = (
        torch.nn.functional.interpolate(cam, size=patches.shape[1:], mode="trilinear", align_corners=False)[
            :, 0
        ]
        .detach()
        .numpy()
    )
    assert ours.max() > 0
    np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-6 * float(np.abs(theirs).max()))


@pytest.mark.parametrize("method", ["layercam", "gradcam"])
def test_an_ensembles_map_and_logit_are_its_members_means(method):
    torch.manual_seed(1)
    ensemble = NoduleEnsemble(2).eval()
    image = oblique_grid()
    image.array[:] = np.random.default_rng(0).normal(-500.0, 300.0, image.array.shape)
    patches = extract_patches(image, np.array([[0.0, 0.0, 0.0], [20.0, 10.0, -15.0]]))
    maps, logits = patch_gradcam(ensemble, patches, method=method)
    members = [patch_gradcam(member, patches, method=method) for member in ensemble.members]
    assert maps.max() > 0
    assert np.allclose(maps, np.mean([m for m, _ in members], axis=0), atol=1e-6)
    assert np.allclose(logits, patch_logits(ensemble, patches), atol=1e-5)
    assert "features.3" in finding_layers(ensemble)


def test_an_unknown_method_is_refused(random_classifier):
    patch = np.zeros((1,) + (PATCH_VOXELS,) * 3, dtype=np.float32)
    with pytest.raises(InputError, match="--gradcam-method"):
        patch_gradcam(random_classifier, patch, method="scorecam")


def test_every_listed_layer_works_and_others_are_refused(random_classifier):
    network = random_classifier
    patch = np.random.default_rng(1).uniform(-1000, 300, (1,) + (PATCH_VOXELS,) * 3).astype(np.float32)
    assert DEFAULT_FINDING_LAYER in finding_layers(network)
    for layer in finding_layers(network):
        maps, _ = patch_gradcam(network, patch, layer)
        assert maps.shape == patch.shape
    for layer in ("classifier.2", "average", "features.9", ""):
        with pytest.raises(InputError, match="no such layer"):
            check_finding_layer(layer)


@pytest.fixture(scope="module")
def two_nodules(random_classifier):
    """A 1.5 mm lung of -850 HU with two solid balls, and their findings from a random classifier
    (threshold 0)."""
    image = Volume(np.full((60, 60, 120), -850.0, dtype=np.float32), (1.5, 1.5, 1.5), (0.0, 0.0, 0.0))
    lps = image.ijk_to_lps(np.argwhere(np.ones(image.array.shape, bool))[:, ::-1]).reshape(
        image.array.shape + (3,)
    )
    centers = [image.ijk_to_lps(np.array(p, dtype=float)) for p in ([30, 30, 30], [90, 28, 32])]
    for center in centers:
        image.array[np.linalg.norm(lps - center, axis=-1) <= 5.0] = 40.0
    scorer = NoduleScorer(random_classifier, slope=0.7, intercept=-0.3, rank_weight=-0.5)
    detection = detect_nodules(image, image.array < -500, image, scorer, threshold=0.0)
    return image, centers, scorer, detection


def test_findings_map_is_one_per_finding_combined_in_0_1(two_nodules):
    image, centers, scorer, detection = two_nodules
    findings = [
        f
        for f in detection.findings
        if min(np.linalg.norm(np.subtract(patch_center(f), c)) for c in centers) < 3.0
    ]
    assert len(findings) == 2
    values, cams = findings_gradcam(image, findings, scorer.network, image)
    assert values.shape == image.array.shape and values.dtype == np.float32
    assert values.min() >= 0.0 and values.max() == pytest.approx(1.0)
    lps = image.ijk_to_lps(np.argwhere(np.ones(image.array.shape, bool))[:, ::-1]).reshape(
        image.array.shape + (3,)
    )
    for finding, cam in zip(findings, cams):
        assert cam.finding_id == finding.id and cam.patch_map.shape == (PATCH_VOXELS,) * 3
        fused = fuse(np.array([cam.logit]), np.array([finding.candidate.rank]), scorer.rank_weight)
        assert calibrate(fused, scorer.slope, scorer.intercept)[0] == pytest.approx(finding.score, abs=1e-4)
        near = np.abs(lps - np.array(cam.center_lps)).max(axis=-1) <= HALF_PATCH_MM
        assert values[near].max() == pytest.approx(
            1.0, abs=1e-6
        )  # each finding normalised by its own maximum
    far = (
        np.min([np.abs(lps - np.array(cam.center_lps)).max(axis=-1) for cam in cams], axis=0)
        > HALF_PATCH_MM + 1e-3
    )
    assert far.any() and not values[far].any()


def test_no_findings_give_an_empty_map(two_nodules):
    image, _, scorer, _ = two_nodules
    values, cams = findings_gradcam(image, [], scorer.network, image)
    assert cams == [] and values.shape == image.array.shape and not values.any()
