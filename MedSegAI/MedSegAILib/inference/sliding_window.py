"""Tiled ("sliding window") inference with stitching by ownership, not by blending.

The padded volume is cut into a grid of tiles chosen to compute as few voxels as
possible: each tile holds at most ``max_tile_voxels`` voxels (memory) and overlaps its
neighbours by at least ``2 * margin`` voxels. Every voxel takes the output of exactly one
tile, the one it lies deepest in (overlaps are split in the middle), so each kept voxel
saw at least ``margin`` voxels of context, except at the volume's own border. Compared
with blending overlapping windows this needs no weight map, no float accumulation buffer
and far fewer computed voxels; outputs go straight into float16 buffers on the cropped
model grid.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..progress import CancelToken, ProgressCallback, check_cancelled, no_progress

DEFAULT_MAX_TILE_VOXELS = 128**3
DEFAULT_MARGIN = 8

Tile = tuple[int, int, int, int]


@dataclass
class TiledOutput:
    """Network outputs on the (unpadded) model grid.

    Attributes:
        probabilities: softmax, float16 ``(classes, k, j, i)``.
        features: decoder features, float16 ``(channels, k, j, i)``, or ``None``.
        windows: the number of tiles run.
    """

    probabilities: np.ndarray
    features: np.ndarray | None
    windows: int


def axis_tiles(length: int, count: int, margin: int, divisor: int) -> list[Tile]:
    """``count`` tiles along one axis of ``length`` voxels (a multiple of ``divisor``).

    Returns:
        ``(tile_start, tile_stop, own_start, own_stop)`` per tile: the tile that is run
        and the part of it whose output is kept. Own ranges partition ``0..length``; a
        tile's kept part is at least ``margin`` voxels from its inner edges.
    """
    if count <= 1:
        return [(0, length, 0, length)]
    size = min(length, divisor * math.ceil((length + 2 * margin * (count - 1)) / count / divisor))
    while size < length and size - math.ceil((length - size) / (count - 1)) < 2 * margin:
        size = min(length, size + divisor)
    starts = [index * (length - size) // (count - 1) for index in range(count)]
    bounds = [0] + [(starts[index] + size + starts[index + 1]) // 2 for index in range(count - 1)] + [length]
    return [(start, start + size, bounds[index], bounds[index + 1]) for index, start in enumerate(starts)]


def plan_tiles(shape: Sequence[int], max_tile_voxels: int, margin: int, divisor: int) -> list[list[Tile]]:
    """The per-axis tiles that compute the fewest voxels with tiles of at most ``max_tile_voxels``.

    Ties go to fewer windows. If no tiling fits the budget, the smallest tiles are used.
    """
    options = []
    for length in shape:
        most = max(1, math.ceil(length / max(divisor, 2 * margin + divisor)))
        options.append([axis_tiles(length, count, margin, divisor) for count in range(1, most + 1)])
    best: tuple[tuple[int, int], list[list[Tile]]] | None = None
    for choice in itertools.product(*options):
        tile_voxels = math.prod(tiles[0][1] - tiles[0][0] for tiles in choice)
        windows = math.prod(len(tiles) for tiles in choice)
        key = (windows * tile_voxels, windows) if tile_voxels <= max_tile_voxels else (math.inf, tile_voxels)
        if best is None or key < best[0]:
            best = (key, list(choice))
    assert best is not None
    return best[1]


def predict_tiled(
    network: nn.Module,
    network_input: np.ndarray,
    output_shape: Sequence[int],
    device: torch.device,
    *,
    divisor: int,
    max_tile_voxels: int = DEFAULT_MAX_TILE_VOXELS,
    margin: int = DEFAULT_MARGIN,
    keep_features: bool = False,
    progress: ProgressCallback = no_progress,
    cancel: CancelToken | None = None,
) -> TiledOutput:
    """Run ``network`` over ``network_input`` tile by tile.

    Args:
        network: in eval mode; with ``keep_features`` it must offer ``features()``/``head()``.
        network_input: normalised, padded ``[k, j, i]`` float32 volume.
        output_shape: the unpadded ``[k, j, i]`` shape to keep (outputs are cropped to it).
        device: where to run the network.
        divisor: tile sizes are multiples of this.
        max_tile_voxels: the most voxels in one tile (bounds the memory per window).
        margin: the least context kept around each voxel inside the volume.
        keep_features: also keep the decoder features (``network.features``).
        progress: called with ``(fraction, "inference: window i/n")`` after each tile.
        cancel: checked before each tile.

    Returns:
        Softmax probabilities (and features) on the output grid.

    Raises:
        Cancelled: ``cancel`` was set.
    """
    output_shape = tuple(int(n) for n in output_shape)
    tiles = list(itertools.product(*plan_tiles(network_input.shape, max_tile_voxels, margin, divisor)))
    probabilities: np.ndarray | None = None
    features: np.ndarray | None = None
    with torch.inference_mode():
        for index, tile in enumerate(tiles):
            check_cancelled(cancel)
            source = tuple(slice(start, stop) for start, stop, _, _ in tile)
            batch = torch.from_numpy(np.ascontiguousarray(network_input[source]))[None, None].to(device)
            if device.type == "cpu":
                batch = batch.contiguous(memory_format=torch.channels_last_3d)
            if keep_features:
                tile_features = network.features(batch)
                logits = network.head(tile_features)
            else:
                tile_features, logits = None, network(batch)
            tile_probabilities = torch.softmax(logits.float(), dim=1)[0].to(torch.float16).cpu().numpy()
            if probabilities is None:
                probabilities = np.zeros((tile_probabilities.shape[0],) + output_shape, dtype=np.float16)
            if tile_features is not None and features is None:
                features = np.zeros((tile_features.shape[1],) + output_shape, dtype=np.float16)
            keep = tuple(
                slice(own_start, min(own_stop, n))
                for (_, _, own_start, own_stop), n in zip(tile, output_shape)
            )
            if all(part.stop > part.start for part in keep):
                local = tuple(
                    slice(part.start - start, part.stop - start) for part, (start, _, _, _) in zip(keep, tile)
                )
                probabilities[(slice(None),) + keep] = tile_probabilities[(slice(None),) + local]
                if features is not None and tile_features is not None:
                    features[(slice(None),) + keep] = (
                        tile_features[0][(slice(None),) + local].to(torch.float16).cpu().numpy()
                    )
            progress((index + 1) / len(tiles), f"inference: window {index + 1}/{len(tiles)}")
    assert probabilities is not None
    return TiledOutput(probabilities=probabilities, features=features, windows=len(tiles))
