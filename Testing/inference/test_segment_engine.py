"""segment_volume: one forward pass from a CT on any grid to labels on that same grid."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from chest_phantom import LEFT_LUNG, NODULE, RIGHT_LUNG, SKIN_RIM_HU, ThresholdNet, chest_phantom, rotation
from MedSegAILib.errors import Cancelled, InputError, MedSegAIError
from MedSegAILib.inference.engine import segment_volume
from MedSegAILib.io import Volume
from MedSegAILib.models.loaded import LoadedModel
from MedSegAILib.progress import CancelToken

LEFT, RIGHT, NODULE_LABEL = 1, 2, 3


@pytest.fixture
def stand_in(random_model) -> LoadedModel:
    """The test card with a network whose output follows the phantom's intensities."""
    return LoadedModel(card=random_model.card, network=ThresholdNet().eval(), device=torch.device("cpu"))


def centroid_lps(volume: Volume, mask: np.ndarray) -> np.ndarray:
    k, j, i = np.nonzero(mask)
    return volume.ijk_to_lps(np.stack([i, j, k], axis=-1).astype(float)).mean(axis=0)


def test_random_model_outputs_have_the_documented_shapes_and_grids(random_model):
    volume = chest_phantom()
    result = segment_volume(volume, random_model, keep_features=True)

    assert result.labels.same_grid(volume)
    assert result.labels.array.dtype == np.uint8
    assert set(np.unique(result.labels.array)) <= {0, 1, 2, 3, 4}
    grid = result.model_grid
    assert np.allclose(grid.direction, np.eye(3)) and grid.spacing == (4.0, 4.0, 4.0)
    assert result.probabilities.shape == (4,) + grid.array.shape
    assert result.probabilities.dtype == np.float16
    assert np.allclose(result.probabilities.astype(np.float32).sum(axis=0), 1.0, atol=1e-2)
    assert result.model_labels.shape == grid.array.shape
    assert result.features is not None and result.features.shape == (4,) + grid.array.shape
    assert result.class_names == ("background", "lung", "lung nodule", "airway")
    assert set(result.timings) == {"preprocess", "inference", "postprocess"}


def test_features_give_the_same_logits_as_the_full_network(random_model):
    result = segment_volume(chest_phantom(), random_model, keep_features=True)
    with torch.inference_mode():
        logits = random_model.network.head(torch.from_numpy(result.features.astype(np.float32))[None])
    from_features = torch.softmax(logits, dim=1)[0].numpy()
    assert np.abs(from_features - result.probabilities.astype(np.float32)).max() < 0.02


def test_crop_keeps_the_body_and_drops_outside_air(random_model):
    volume = chest_phantom(extent_mm=(400.0, 320.0, 200.0))
    result = segment_volume(volume, random_model)
    x_extent = result.model_grid.array.shape[2] * 4.0
    assert 280.0 <= x_extent <= 320.0  # body is 280 mm wide, +10 mm margin per side
    assert result.model_grid.array.max() == pytest.approx(200.0, abs=60.0)


def test_fast_mode_runs_on_the_coarser_card_spacing(random_model):
    result = segment_volume(chest_phantom(), random_model, fast=True)
    assert result.model_grid.spacing == (8.0, 8.0, 8.0)
    assert result.labels.same_grid(chest_phantom())


@pytest.mark.parametrize(
    "direction",
    [np.eye(3), np.diag([-1.0, -1.0, 1.0]), rotation(25.0, 15.0)],
    ids=["lps", "flipped_ras_storage", "oblique"],
)
def test_left_lung_is_at_the_patients_left_whatever_the_array_order(stand_in, direction):
    volume = chest_phantom(direction=direction)
    result = segment_volume(volume, stand_in)
    labels = result.labels.array

    assert np.linalg.norm(centroid_lps(volume, labels == LEFT) - LEFT_LUNG) < 8.0
    assert np.linalg.norm(centroid_lps(volume, labels == RIGHT) - RIGHT_LUNG) < 8.0
    assert np.linalg.norm(centroid_lps(volume, labels == NODULE_LABEL) - NODULE) < 5.0


def test_geometry_is_preserved_for_oblique_anisotropic_input(stand_in):
    volume = chest_phantom(spacing=(2.7, 3.3, 6.0), direction=rotation(-20.0, 12.0))
    result = segment_volume(volume, stand_in)

    assert result.labels.same_grid(volume, tolerance=1e-9)
    assert result.labels.array.shape == volume.array.shape
    lung_voxels = np.count_nonzero(np.isin(result.labels.array, (LEFT, RIGHT)))
    expected = np.count_nonzero(volume.array == -850.0)
    assert abs(lung_voxels - expected) / expected < 0.1
    assert np.linalg.norm(centroid_lps(volume, result.labels.array == LEFT) - LEFT_LUNG) < 8.0


def test_dense_blob_outside_the_lungs_is_not_a_nodule(stand_in):
    result = segment_volume(chest_phantom(outside_blob=True), stand_in)
    nodule = result.labels.array == NODULE_LABEL
    assert np.linalg.norm(centroid_lps(result.labels, nodule) - NODULE) < 5.0


def test_lungs_joined_at_the_midline_are_split_and_skin_partial_volume_is_not_lung(stand_in):
    volume = chest_phantom(skin_rim=True, lung_bridge=True)
    labels = segment_volume(volume, stand_in).labels.array

    assert not np.isin(labels[volume.array == SKIN_RIM_HU], (LEFT, RIGHT)).any()
    lung_voxels = np.count_nonzero(np.isin(labels, (LEFT, RIGHT)))
    assert abs(lung_voxels - np.count_nonzero(volume.array == -850.0)) / lung_voxels < 0.05
    assert np.linalg.norm(centroid_lps(volume, labels == LEFT) - LEFT_LUNG) < 8.0
    assert np.linalg.norm(centroid_lps(volume, labels == RIGHT) - RIGHT_LUNG) < 8.0


def test_progress_is_monotonic_and_reports_each_window(random_model):
    seen: list[tuple[float, str]] = []
    segment_volume(
        chest_phantom(), random_model, progress=lambda f, m: seen.append((f, m)), max_tile_voxels=48**3
    )
    fractions = [fraction for fraction, _ in seen]
    assert fractions == sorted(fractions) and fractions[0] == 0.0 and fractions[-1] == 1.0
    windows = [message for _, message in seen if message.startswith("inference: window")]
    assert len(windows) > 1 and windows[-1].endswith(f"{len(windows)}/{len(windows)}")


def test_cancellation_stops_between_windows(random_model):
    token = CancelToken()
    windows: list[str] = []

    def progress(fraction: float, message: str) -> None:
        if message.startswith("inference: window"):
            windows.append(message)
            token.cancel()

    with pytest.raises(Cancelled):
        segment_volume(chest_phantom(), random_model, progress=progress, cancel=token, max_tile_voxels=48**3)
    assert len(windows) == 1


def test_features_are_refused_for_a_network_without_the_features_head_split(random_model):
    plain = LoadedModel(
        card=random_model.card, network=torch.nn.Conv3d(1, 4, 1).eval(), device=torch.device("cpu")
    )
    with pytest.raises(MedSegAIError, match="does not split into features"):
        segment_volume(chest_phantom(), plain, keep_features=True)


def test_a_volume_smaller_than_the_network_needs_is_refused(random_model):
    tiny = Volume(np.zeros((2, 8, 8), dtype=np.float32), (1.0, 1.0, 1.0), (0.0, 0.0, 0.0))
    with pytest.raises(InputError, match="too small"):
        segment_volume(tiny, random_model)
