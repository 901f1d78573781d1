"""Engine parts: tiling, device choice, body crop, anatomical clean-up, run record."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from MedSegAILib.errors import InputError
from MedSegAILib.inference.device import select_device
from MedSegAILib.inference.postprocess import largest_components, nodules_in_lung
from MedSegAILib.inference.preprocess import body_bounding_box, pad_to_divisor
from MedSegAILib.inference.run_record import build_run_record
from MedSegAILib.inference.sliding_window import axis_tiles, plan_tiles, predict_tiled


@pytest.mark.parametrize("length, count", [(8, 1), (64, 2), (136, 2), (256, 3), (344, 3), (1000, 9)])
def test_tiles_partition_the_axis_keeping_a_margin_of_context(length, count):
    tiles = axis_tiles(length, count, margin=8, divisor=8)
    owned = [(own_start, own_stop) for _, _, own_start, own_stop in tiles]
    assert len(tiles) == count and owned[0][0] == 0 and owned[-1][1] == length
    assert all(a[1] == b[0] for a, b in zip(owned, owned[1:]))
    for start, stop, own_start, own_stop in tiles:
        assert (stop - start) % 8 == 0 and 0 <= start and stop <= length
        assert own_start == 0 or own_start - start >= 8
        assert own_stop == length or stop - own_stop >= 8


def test_the_tile_plan_respects_the_memory_budget_with_few_computed_voxels():
    shape = (144, 192, 248)
    plan = plan_tiles(shape, max_tile_voxels=128**3, margin=8, divisor=8)
    tile_shape = [tiles[0][1] - tiles[0][0] for tiles in plan]
    computed = np.prod([len(tiles) * size for tiles, size in zip(plan, tile_shape)])
    assert np.prod(tile_shape) <= 128**3
    assert computed < 1.2 * np.prod(shape)  # MONAI defaults (overlap 0.25) compute > 2x


def test_tiled_output_equals_one_pass_for_a_network_with_small_receptive_field():
    torch.manual_seed(0)
    network = torch.nn.Sequential(
        torch.nn.Conv3d(1, 3, 3, padding=1), torch.nn.Conv3d(3, 3, 3, padding=1)
    ).eval()
    volume = np.random.default_rng(0).normal(size=(40, 48, 56)).astype(np.float32)
    tiled = predict_tiled(
        network, volume, (37, 48, 50), torch.device("cpu"), divisor=8, max_tile_voxels=24**3, margin=4
    )
    with torch.inference_mode():
        whole = torch.softmax(network(torch.from_numpy(volume)[None, None]), dim=1)[0].numpy()
    assert tiled.windows > 8
    assert np.abs(tiled.probabilities.astype(np.float32) - whole[:, :37, :, :50]).max() < 2e-3


def test_device_choice():
    assert select_device("cpu") == torch.device("cpu")
    assert select_device("auto").type in ("cpu", "cuda", "mps")
    with pytest.raises(InputError, match="unknown device"):
        select_device("tpu")
    with pytest.raises(InputError, match="no working CUDA GPU"):
        select_device(f"cuda:{torch.cuda.device_count() + 3}")


def test_body_box_is_the_largest_component_above_minus_500_hu_with_margin():
    hu = np.full((30, 40, 50), -1024.0, dtype=np.float32)
    hu[10:20, 10:30, 10:40] = 40.0  # body
    hu[25:28, 35:38, 2:5] = 100.0  # table, a smaller separate object
    box = body_bounding_box(hu, spacing=(2.0, 2.0, 2.0), margin_mm=4.0)
    assert box == (slice(8, 22), slice(8, 32), slice(8, 42))


def test_padding_reaches_the_divisor_with_air():
    padded = pad_to_divisor(np.zeros((9, 16, 17), dtype=np.float32), 8, -1024.0)
    assert padded.shape == (16, 16, 24) and padded[-1, 0, 0] == -1024.0 and padded[0, 0, 0] == 0.0


def test_two_largest_lung_components_are_kept():
    mask = np.zeros((20, 20, 40), dtype=bool)
    mask[2:18, 2:18, 2:15] = True
    mask[2:18, 2:18, 22:38] = True
    mask[0, 0, 18] = True  # a tiny island
    kept = largest_components(mask, 2, min_fraction=0.05)
    assert kept.sum() == mask.sum() - 1 and not kept[0, 0, 18]


def test_nodules_must_touch_the_lung_and_not_be_tiny():
    lung = np.zeros((30, 30, 30), dtype=bool)
    lung[5:25, 5:25, 5:15] = True
    nodules = np.zeros_like(lung)
    nodules[10:14, 10:14, 13:17] = True  # touching the lung
    nodules[10:14, 10:14, 22:26] = True  # outside the lung
    nodules[20, 20, 10] = True  # a single-voxel island inside the lung
    lung &= ~nodules
    kept = nodules_in_lung(nodules, lung, spacing=(1.0, 1.0, 1.0))
    assert kept[10:14, 10:14, 13:17].all() and not kept[:, :, 22:26].any() and not kept[20, 20, 10]


def test_run_record_requires_the_contract_stages(random_model):
    timings = {"load": 1.0, "preprocess": 2.0, "inference": 3.0, "postprocess": 0.5, "total": 7.0}
    record = build_run_record(
        "segment", random_model.card, "cpu", timings, input_path="x.nii.gz", options={"fast": False}
    )
    assert record["model"]["version"] == "0.0.0-test" and record["timings"]["inference"] == 3.0
    assert record["peak_rss_mb"] > 50 and set(record["versions"]) >= {"python", "torch", "monai", "SimpleITK"}
    with pytest.raises(ValueError, match="total"):
        build_run_record(
            "segment",
            random_model.card,
            "cpu",
            {k: v for k, v in timings.items() if k != "total"},
            input_path="x",
            options={},
        )
