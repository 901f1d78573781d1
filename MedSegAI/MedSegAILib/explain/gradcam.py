"""3-D Grad-CAM for a region of a finished segmentation, stitched across sliding windows.

Target: the class score (logit) of one network class summed over a target region on the
model grid (e.g. a predicted segment). The network ran
window by window (:mod:`~MedSegAILib.inference.sliding_window`), each voxel's output
coming from the window that owns it, so the target splits into one term per window:
``S_w`` = the class score summed over the target voxels that window ``w`` owns. Each
window gets standard Grad-CAM (Selvaraju et al. 2017): channel weights = the spatial mean
of ``dS_w / dA`` over the window, map = ReLU(weighted sum of the layer's activations ``A``),
upsampled (trilinear) to the window. A window that owns no target voxel has ``S_w = 0``
and a zero map, so only the windows that overlap the target are computed. The windows'
maps are stitched by ownership, exactly as the segmentation was, upsampled (linearly) to
the input grid and divided by their maximum, giving [0, 1].

Layers:

- ``decoder.0`` (the default: the finest decoder block, full resolution): its output is
  the decoder features that ``segment_volume(..., keep_features=True)`` kept, so only the
  small head is differentiated, and only around the target (the head's gradient is zero
  further than its receptive field from the target). No window is run again.
- any other layer name of the network (``decoder.1``, ``encoder.3``, ...): the overlapping
  windows are run again with gradients, using MONAI's ``monai.visualize.GradCAM`` (on a
  copy of the network, so its hooks never stay on the model), at several times the cost.
"""

from __future__ import annotations

import contextlib
import copy
import itertools
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..errors import InputError
from ..inference.device import DEFAULT_CPU_THREADS, cpu_threads
from ..inference.engine import SegmentationResult
from ..inference.preprocess import prepare_input
from ..inference.sliding_window import DEFAULT_MARGIN, DEFAULT_MAX_TILE_VOXELS, plan_tiles
from ..io.volume import Volume
from ..models.loaded import LoadedModel
from ..progress import CancelToken, check_cancelled

DEFAULT_LAYER = "decoder.0"

Box = tuple[slice, slice, slice]


@dataclass
class GradCamMap:
    """A raw (unnormalised, non-negative) Grad-CAM map on the model grid.

    Attributes:
        values: float32 ``[k, j, i]`` on ``SegmentationResult.model_grid``.
        layer: the layer it was computed at.
        windows_run: windows that overlap the target (the only ones computed).
        windows_total: windows of the segmentation pass.
        seconds: time taken.
    """

    values: np.ndarray
    layer: str
    windows_run: int
    windows_total: int
    seconds: float


def gradcam_on_model_grid(
    result: SegmentationResult,
    model: LoadedModel,
    target: np.ndarray,
    raw_class: int,
    *,
    layer: str = DEFAULT_LAYER,
    volume: Volume | None = None,
    fast: bool = False,
    max_tile_voxels: int = DEFAULT_MAX_TILE_VOXELS,
    margin: int = DEFAULT_MARGIN,
    threads: int = DEFAULT_CPU_THREADS,
    cancel: CancelToken | None = None,
) -> GradCamMap:
    """Grad-CAM of ``raw_class``'s score summed over ``target``.

    Args:
        result: the segmentation (with kept features for the default layer).
        model: the model that produced it.
        target: boolean ``[k, j, i]`` target region on the model grid.
        raw_class: the network output class whose score is the target.
        layer: a module name of the network (default :data:`DEFAULT_LAYER`).
        volume: the input CT; needed for layers other than the default (windows rerun).
        fast: whether ``result`` was computed in fast mode (for rerunning windows).
        max_tile_voxels: the sliding-window tile budget ``segment_volume`` used.
        margin: the sliding-window margin ``segment_volume`` used.
        threads: torch CPU threads on the CPU.
        cancel: checked between windows.

    Returns:
        The raw map on the model grid (all zeros for an empty target).

    Raises:
        InputError: ``layer`` is not a module of the network.
        ValueError: what the chosen layer needs is missing (features, or ``volume``).
    """
    started = time.perf_counter()
    network = model.network
    check_layer(network, layer)
    divisor = int(getattr(network, "divisor", 1))
    grid_shape = result.model_labels.shape
    padded_shape = tuple(n + (-n) % divisor for n in grid_shape)
    tiles = list(itertools.product(*plan_tiles(padded_shape, max_tile_voxels, margin, divisor)))
    values = np.zeros(grid_shape, dtype=np.float32)
    overlapping = [tile for tile in tiles if np.any(target[_own_box(tile, grid_shape)])]
    use_features = layer == DEFAULT_LAYER and result.features is not None and hasattr(network, "head")
    if not use_features:
        if volume is None:
            raise ValueError(f"Grad-CAM at {layer!r} reruns windows and needs the input volume")
        network_input = prepare_input(volume, model.card, divisor=divisor, fast=fast).network_input
        scorer = _RegionScore(copy.deepcopy(network))
        cam = _monai_gradcam(scorer, layer)
    threads_context = cpu_threads(threads) if model.device.type == "cpu" else contextlib.nullcontext()
    with threads_context:
        for tile in overlapping:
            check_cancelled(cancel)
            own = _own_box(tile, grid_shape)
            if use_features:
                window_map = _head_window_cam(
                    network, result.features, tile, own, target, raw_class, model.device
                )
            else:
                window_map = _rerun_window_cam(
                    cam, scorer, network_input, tile, own, target, raw_class, model.device
                )
            values[own] = window_map
    return GradCamMap(values, layer, len(overlapping), len(tiles), time.perf_counter() - started)


def normalised_on_input_grid(result: SegmentationResult, values: np.ndarray) -> np.ndarray:
    """A model-grid map resampled (linearly) to the input grid and divided by its maximum.

    Returns:
        float32 in [0, 1] on the input grid (all zeros when the map is).
    """
    mapped = result.to_input_grid(values, linear=True, default_value=0.0)
    np.clip(mapped, 0.0, None, out=mapped)
    peak = float(mapped.max()) if mapped.size else 0.0
    if peak > 0.0:
        mapped /= peak
    return mapped


def _own_box(tile: Sequence[tuple[int, int, int, int]], grid_shape: Sequence[int]) -> Box:
    """The part of the model grid that ``tile`` owns."""
    return tuple(
        slice(min(own_start, n), min(own_stop, n)) for (_, _, own_start, own_stop), n in zip(tile, grid_shape)
    )  # type: ignore[return-value]


def _tile_box(tile: Sequence[tuple[int, int, int, int]], grid_shape: Sequence[int]) -> Box:
    """The part of the model grid that ``tile`` covers (the padding is not on the grid)."""
    return tuple(slice(min(start, n), min(stop, n)) for (start, stop, _, _), n in zip(tile, grid_shape))  # type: ignore[return-value]


def _head_window_cam(
    network: nn.Module,
    features: np.ndarray,
    tile,
    own: Box,
    target: np.ndarray,
    raw_class: int,
    device: torch.device,
) -> np.ndarray:
    """Grad-CAM at the head's input (``decoder.0``) for one window, from kept features."""
    grid_shape = target.shape
    window = _tile_box(tile, grid_shape)
    found = np.argwhere(target[own])
    low = found.min(axis=0) + [s.start for s in own]
    high = found.max(axis=0) + 1 + [s.start for s in own]
    halo = _head_radius(network)
    box = tuple(
        slice(max(w.start, int(lo) - halo), min(w.stop, int(hi) + halo))
        for w, lo, hi in zip(window, low, high)
    )
    with torch.enable_grad():
        local = (
            torch.from_numpy(features[(slice(None),) + box].astype(np.float32))
            .to(device)[None]
            .requires_grad_(True)
        )
        logits = network.head(local)
        in_box = np.zeros(tuple(s.stop - s.start for s in box), dtype=bool)
        overlap = tuple(
            slice(max(b.start, o.start) - b.start, min(b.stop, o.stop) - b.start) for b, o in zip(box, own)
        )
        in_box[overlap] = target[
            tuple(slice(b.start + o.start, b.start + o.stop) for b, o in zip(box, overlap))
        ]
        mask = torch.from_numpy(in_box).to(device)
        score = logits[0, raw_class][mask].sum()
        (gradient,) = torch.autograd.grad(score, local)
    window_voxels = float(np.prod([s.stop - s.start for s in window]))
    weights = (gradient[0].sum(dim=(1, 2, 3)) / window_voxels).detach()
    activations = torch.from_numpy(features[(slice(None),) + own].astype(np.float32)).to(device)
    cam = torch.relu(torch.einsum("c,cdhw->dhw", weights, activations))
    return cam.cpu().numpy()


def _head_radius(network: nn.Module) -> int:
    """How far (voxels) the head's output reaches into its input: the sum of its conv radii."""
    head = getattr(network, "head_layers", network)
    return sum((m.kernel_size[0] // 2) * m.dilation[0] for m in head.modules() if isinstance(m, nn.Conv3d))


class _RegionScore(nn.Module):
    """Wraps a segmentation network: outputs ``(1, K)``, each class's logits summed over
    ``mask`` (set per window)."""

    def __init__(self, network: nn.Module) -> None:
        super().__init__()
        self.network = network
        self.mask: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.network(x) * self.mask).sum(dim=(2, 3, 4))


def _monai_gradcam(scorer: _RegionScore, layer: str):
    """MONAI's GradCAM on ``scorer`` at ``layer``, returning raw (unnormalised) maps."""
    from monai.visualize import GradCAM  # monai is slow to import; only Grad-CAM needs this

    return GradCAM(nn_module=scorer, target_layers=f"network.{layer}", postprocessing=lambda values: values)


def _rerun_window_cam(
    cam,
    scorer: _RegionScore,
    network_input: np.ndarray,
    tile,
    own: Box,
    target: np.ndarray,
    raw_class: int,
    device: torch.device,
) -> np.ndarray:
    """Grad-CAM at any layer for one window, rerunning it with MONAI's GradCAM."""
    source = tuple(slice(start, stop) for start, stop, _, _ in tile)
    x = (
        torch.from_numpy(np.ascontiguousarray(network_input[source]))[None, None]
        .to(device)
        .requires_grad_(True)
    )
    mask = np.zeros(x.shape[2:], dtype=np.float32)
    local = tuple(slice(o.start - s.start, o.stop - s.start) for o, s in zip(own, source))
    mask[local] = target[own]
    scorer.mask = torch.from_numpy(mask)[None, None].to(device)
    with torch.enable_grad():
        window_map = cam(x, class_idx=raw_class)
    return window_map[0, 0][local].detach().cpu().numpy()


def check_layer(network: torch.nn.Module, layer: str) -> None:
    """Refuse a ``--gradcam-layer`` that names no module of ``network``.

    Raises:
        InputError: it names none.
    """
    if layer == "" or layer not in dict(network.named_modules()):
        raise InputError(f"--gradcam-layer {layer}: the network has no such layer; use e.g. {DEFAULT_LAYER}")
