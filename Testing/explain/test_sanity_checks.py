"""Sanity checks for the explanations of the SHIPPED model (Adebayo et al. 2018).

Case: a 100 mm cube of the held-out CIP ``ct-64`` chest (never trained on) around a lung
point far from the pleura, with one 12 mm solid nodule inserted there by the training
inserter (so the lesion's true extent is known).

- the class activation map (default method and layer) of the finding that detection (shipped
  segmentation model and nodule classifier) makes of the lesion points at it: >= 60 % of the
  map's mass in its top 1 % of the cube's voxels lies within 10 mm of the lesion;
- model randomisation: the same target explained by a network with re-initialised weights
  gives a different map (Spearman rank correlation < 0.5), for the segmentation network (on
  the lungs) and for the nodule classifier (on the lesion's finding);
- entropy is higher at segment boundaries than inside segments, and higher on a noised
  input than on the clean one.
"""

from __future__ import annotations

import copy
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import torch
from MedSegAILib.detection.detector import DetectionResult, Finding
from MedSegAILib.detection.nodule_scorer import NoduleScorer, scorer_for_model
from MedSegAILib.detection.patch_classifier import extract_patches
from MedSegAILib.detection.pipeline import detect_from_segmentation
from MedSegAILib.errors import InputError
from MedSegAILib.explain.finding_gradcam import findings_gradcam, patch_center, patch_gradcam
from MedSegAILib.explain.gradcam import gradcam_on_model_grid
from MedSegAILib.inference.engine import segment_volume
from MedSegAILib.io import Volume, read_volume
from MedSegAILib.io.shared_data import shared_data_path
from MedSegAILib.models.registry import load_model, resolve_model
from MedSegAILib.training.synthetic_nodules import NoduleSpec, insert_nodule
from MedSegAILib.uncertainty.mc_dropout import estimate_uncertainty
from scipy import ndimage, stats

CUBE_MM = 100.0
LESION_DIAMETER_MM = 12.0
SAMPLES = 8
LUNG_CLASS = 1  # raw network classes of the chest_ct model: background, lung, lung nodule, airway

pytestmark = [pytest.mark.shared_data]


@pytest.fixture(scope="module")
def shipped():
    try:
        return load_model(resolve_model(None), "cpu")
    except InputError:
        pytest.skip("needs the shipped chest_ct model in MedSegAILib/models/builtin/chest_ct")


def shared_path(relative: str) -> Path:
    """A file under ../shared/data (module-scoped fixtures cannot use ``shared_data``); skips when absent."""
    path = shared_data_path() / relative
    if not path.exists():
        pytest.skip(f"needs ../shared/data/{relative} (real CT not present on this machine)")
    return path


@pytest.fixture(scope="module")
def lesion_case(shipped):
    """(cube CT with the nodule, its lesion mask on the cube's grid)."""
    ct = read_volume(shared_path("cip_lung_ct/ct-64.nrrd"))
    labels = sitk.GetArrayFromImage(sitk.ReadImage(str(shared_path("cip_lung_ct/lm-64.nrrd")))).astype(
        np.int64
    )
    lung = ((labels & 255) >= 1) & ((labels & 255) <= 14)
    depth = ndimage.distance_transform_edt(lung, sampling=ct.spacing[::-1])
    center = np.unravel_index(np.argmax(depth), depth.shape)
    half = [int(round(CUBE_MM / 2 / s)) for s in ct.spacing[::-1]]
    box = tuple(slice(max(0, c - h), min(n, c + h)) for c, h, n in zip(center, half, ct.array.shape))
    start_ijk = np.array([box[2].start, box[1].start, box[0].start], dtype=float)
    cube = Volume(
        np.ascontiguousarray(ct.array[box]).astype(np.float32),
        ct.spacing,
        tuple(ct.ijk_to_lps(start_ijk)),
        ct.direction,
    )
    local = tuple(float(c - b.start) for c, b in zip(center, box))
    spec = NoduleSpec(center=local, diameter_mm=LESION_DIAMETER_MM, kind="solid", solid_hu=40.0)
    hu, mask = insert_nodule(cube.array, spec, cube.spacing, np.random.default_rng(0))
    return cube.with_array(hu.astype(np.float32)), mask


@pytest.fixture(scope="module")
def segmented(shipped, lesion_case):
    volume, _ = lesion_case
    return segment_volume(volume, shipped, keep_features=True)


@pytest.fixture(scope="module")
def shipped_scorer(shipped) -> NoduleScorer:
    try:
        return scorer_for_model(shipped.card)
    except InputError as error:
        pytest.skip(f"needs the shipped nodule classifier ({error})")


@pytest.fixture(scope="module")
def lesion_finding(lesion_case, segmented, shipped, shipped_scorer) -> Finding:
    """The finding that covers the inserted lesion (detection at the default threshold)."""
    volume, lesion = lesion_case
    detection: DetectionResult = detect_from_segmentation(
        segmented, volume, scorer=shipped_scorer, card=shipped.card
    )
    hits = [finding for finding in detection.findings if (detection.labels[lesion] == finding.id).any()]
    assert hits, f"no finding covers the inserted 12 mm nodule ({len(detection.findings)} findings)"
    return hits[0]


def test_gradcam_mass_concentrates_on_the_lesion(lesion_case, segmented, shipped_scorer, lesion_finding):
    volume, lesion = lesion_case
    values, cams = findings_gradcam(segmented.model_grid, [lesion_finding], shipped_scorer.network, volume)
    assert cams[0].patch_map.any() and values.max() == pytest.approx(1.0)
    top = values >= np.quantile(values, 0.99)
    near = ndimage.distance_transform_edt(~lesion, sampling=volume.spacing[::-1]) <= 10.0
    fraction = float(values[top & near].sum() / values[top].sum())
    assert fraction >= 0.6, f"only {fraction:.0%} of the top-1% Grad-CAM mass is within 10 mm of the lesion"


def test_randomising_the_classifier_changes_the_finding_map(segmented, shipped_scorer, lesion_finding):
    """Adebayo's model-randomisation check for the finding map, compared on its patch
    (where the map is defined)."""
    patch = extract_patches(segmented.model_grid, np.array([patch_center(lesion_finding)]))
    trained, _ = patch_gradcam(shipped_scorer.network, patch)
    torch.manual_seed(0)
    network = copy.deepcopy(shipped_scorer.network)
    for module in network.modules():
        if hasattr(module, "reset_parameters"):
            module.reset_parameters()
    randomised, _ = patch_gradcam(network.eval(), patch)
    assert trained.max() > 0 and randomised.max() > 0
    rho = stats.spearmanr(trained.ravel(), randomised.ravel()).statistic
    assert rho < 0.5, (
        f"the finding's Grad-CAM barely changed when the classifier was randomised (Spearman {rho:.2f})"
    )


def test_randomising_the_weights_changes_the_map(shipped, lesion_case, segmented):
    """Adebayo's model-randomisation check, on the lungs (a target the shipped model segments)."""
    volume, _ = lesion_case
    lungs = [shipped.card.label("left lung").value, shipped.card.label("right lung").value]
    target = np.isin(segmented.model_labels, lungs)
    assert target.any()
    trained = gradcam_on_model_grid(segmented, shipped, target, LUNG_CLASS).values
    torch.manual_seed(0)  # the same random weights whatever ran before
    network = copy.deepcopy(shipped.network)
    for module in network.modules():
        if hasattr(module, "reset_parameters"):
            module.reset_parameters()
    randomised = replace(shipped, network=network.eval())
    # Same volume, same grid, same target region; only the weights differ.
    resegmented = segment_volume(volume, randomised, keep_features=True)
    random_map = gradcam_on_model_grid(resegmented, randomised, target, LUNG_CLASS).values
    assert trained.max() > 0
    rho = stats.spearmanr(trained.ravel(), random_map.ravel()).statistic
    assert rho < 0.5, f"Grad-CAM barely changed when the weights were randomised (Spearman {rho:.2f})"


def test_entropy_is_higher_at_segment_boundaries_than_inside(shipped, segmented):
    uncertainty = estimate_uncertainty(segmented, shipped, SAMPLES)
    labels = segmented.model_labels
    edges = ndimage.grey_dilation(labels, size=3) != ndimage.grey_erosion(labels, size=3)
    interior = ~ndimage.binary_dilation(edges, iterations=2)
    assert edges.any() and interior.any()
    assert uncertainty.entropy[edges].mean() > uncertainty.entropy[interior].mean()


def test_entropy_is_higher_on_a_noised_input(shipped, lesion_case, segmented):
    volume, _ = lesion_case
    noised = volume.with_array(
        volume.array + np.random.default_rng(1).normal(0.0, 150.0, volume.array.shape).astype(np.float32)
    )
    clean = estimate_uncertainty(segmented, shipped, SAMPLES)
    noisy_result = segment_volume(noised, shipped, keep_features=True)
    noisy = estimate_uncertainty(noisy_result, shipped, SAMPLES)
    clean_on_input = segmented.to_input_grid(clean.entropy)
    noisy_on_input = noisy_result.to_input_grid(noisy.entropy)
    assert noisy_on_input.mean() > clean_on_input.mean()
