"""False-positive reduction: a small 3-D CNN that scores a CT patch around a candidate.

Each candidate (:mod:`.candidates`) is seen as a ``PATCH_VOXELS``³ cube of HU sampled at
``PATCH_SPACING_MM`` around its centre: 36 mm across, so the largest nodule (30 mm) fits
with a margin, and a 6 mm nodule is 4 voxels wide. (A 60 mm field at 2.5 mm, the first
design, left a 6 mm nodule 2.4 voxels wide and the network more of each training scan's
anatomy to memorise; it generalised worse to unseen scans, see lab/DETECTION_HISTORY.md.) The network
answers "nodule or not"; vessels in cross-section, airway
walls and pleural bumps are the false candidates it learns to reject. Its weights ship as
safetensors, named with their SHA-256 in ``detection_card.json`` next to the model card,
and are checked before loading.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file
from scipy import ndimage
from torch import nn

from ..errors import InputError
from ..io.volume import Volume
from ..models.weights import load_state_dict

PATCH_VOXELS = 24
PATCH_SPACING_MM = 1.5
HU_WINDOW = (-1000.0, 400.0)


class NoduleClassifier(nn.Module):
    """A small 3-D CNN: one 8-channel conv at full resolution, two stages (16, 32 channels)
    of two convs each, max pooling between, then average and max pooling and a linear logit.
    About 40 M multiply-adds per patch, so a few hundred candidates take a fraction of a second on a CPU."""

    def __init__(self, channels: Sequence[int] = (8, 16, 32), dropout: float = 0.2) -> None:
        super().__init__()
        layers: list[nn.Module] = [_conv(1, channels[0]), nn.MaxPool3d(2)]
        for previous, width in zip(channels[:-1], channels[1:]):
            layers += [_conv(previous, width), _conv(width, width), nn.MaxPool3d(2)]
        self.features = nn.Sequential(*layers)
        self.average = nn.AdaptiveAvgPool3d(1)
        self.maximum = nn.AdaptiveMaxPool3d(1)
        self.classifier = nn.Sequential(nn.Flatten(), nn.Dropout(dropout), nn.Linear(channels[-1] * 2, 1))

    def forward(self, patches: torch.Tensor) -> torch.Tensor:
        """Logits ``(n,)`` for patches ``(n, 1, d, h, w)`` normalised by :func:`normalize`."""
        features = self.features(patches)
        return self.classifier(torch.cat([self.average(features), self.maximum(features)], dim=1)).squeeze(1)


class NoduleEnsemble(nn.Module):
    """Several :class:`NoduleClassifier` trained alike with different seeds; the logit is their mean.
    One retraining moves the held-out FROC by up to 0.17 at 2 FP/scan (lab/DETECTION_HISTORY.md); the mean of
    a few is steadier. Each member costs about 0.15 s per 300 candidates on 2 CPU cores."""

    def __init__(self, members: int) -> None:
        super().__init__()
        if members < 1:
            raise ValueError(f"an ensemble needs at least one member, got {members}")
        self.members = nn.ModuleList(NoduleClassifier() for _ in range(members))

    @classmethod
    def of(cls, networks: Sequence[NoduleClassifier]) -> NoduleEnsemble:
        """An ensemble (in eval mode) holding copies of ``networks``' weights."""
        ensemble = cls(len(networks))
        for member, network in zip(ensemble.members, networks):
            member.load_state_dict(network.state_dict())
        return ensemble.eval()

    def forward(self, patches: torch.Tensor) -> torch.Tensor:
        """The members' mean logit ``(n,)``."""
        return torch.stack([member(patches) for member in self.members]).mean(dim=0)


PatchNetwork = NoduleClassifier | NoduleEnsemble
"""What scores the patches: one classifier or an ensemble of them."""


def _conv(inputs: int, outputs: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv3d(inputs, outputs, 3, padding=1, bias=False), nn.BatchNorm3d(outputs), nn.ReLU(inplace=True)
    )


def normalize(hu: np.ndarray) -> np.ndarray:
    """HU clipped to ``HU_WINDOW`` and scaled to about [-1, 1] (float32)."""
    low, high = HU_WINDOW
    return ((np.clip(hu, low, high) - (low + high) / 2.0) / ((high - low) / 2.0)).astype(np.float32)


def extract_patches(grid: Volume, centers_lps: np.ndarray) -> np.ndarray:
    """HU cubes ``(n, PATCH_VOXELS, PATCH_VOXELS, PATCH_VOXELS)`` around LPS centres.

    Sampled with linear interpolation at ``PATCH_SPACING_MM`` along the patient axes, so
    patches look the same whatever ``grid``'s spacing or orientation; outside the grid is air.
    The patches are sampled in as many threads as torch uses (SciPy releases the GIL).

    Args:
        grid: CT in HU.
        centers_lps: ``(n, 3)`` centres in LPS mm.
    """
    offsets = (np.arange(PATCH_VOXELS) - (PATCH_VOXELS - 1) / 2.0) * PATCH_SPACING_MM
    dz, dy, dx = np.meshgrid(offsets, offsets, offsets, indexing="ij")
    cube = np.stack([dx.ravel(), dy.ravel(), dz.ravel()], axis=1)  # LPS (x, y, z) offsets
    origin = np.asarray(grid.origin, dtype=float)
    cube_ijk = grid.lps_to_ijk(origin + cube) - grid.lps_to_ijk(origin[None])  # the map is affine
    centers_ijk = grid.lps_to_ijk(np.asarray(centers_lps, dtype=float).reshape(-1, 3))
    shape = (len(centers_ijk),) + (PATCH_VOXELS,) * 3
    if len(centers_ijk) == 0:
        return np.zeros(shape, dtype=np.float32)

    def sample(chunk: np.ndarray) -> np.ndarray:
        kji = (chunk[:, None, ::-1] + cube_ijk[None, :, ::-1]).reshape(-1, 3).T
        return ndimage.map_coordinates(grid.array, kji, order=1, mode="constant", cval=-1024.0).astype(
            np.float32
        )

    chunks = np.array_split(centers_ijk, min(len(centers_ijk), max(1, torch.get_num_threads())))
    with ThreadPoolExecutor(len(chunks)) as pool:
        values = list(pool.map(sample, chunks))
    return np.concatenate(values).reshape(shape)


def fused_for_inference(network: PatchNetwork) -> PatchNetwork:
    """A copy of ``network`` (a classifier or an ensemble) in eval mode with each conv, batch norm
    and ReLU fused into one layer (same outputs to float rounding, about a quarter faster on a CPU)."""
    fused = copy.deepcopy(network).eval()
    for module in fused.modules():
        if isinstance(module, nn.Sequential) and len(module) == 3 and isinstance(module[0], nn.Conv3d):
            torch.ao.quantization.fuse_modules(module, [["0", "1", "2"]], inplace=True)
    return fused


@torch.no_grad()
def patch_logits(network: PatchNetwork, patches: np.ndarray, batch: int = 32) -> np.ndarray:
    """Uncalibrated nodule logits ``(n,)`` of HU patches (network in eval mode).

    Small batches keep the activations in the CPU's caches: on 2 cores, 300 patches take
    about 0.15 s in batches of 32 and 0.3 s in batches of 256.
    """
    network.eval()
    logits = [
        network(torch.from_numpy(normalize(patches[start : start + batch]))[:, None]).numpy()
        for start in range(0, len(patches), batch)
    ]
    return np.concatenate(logits).astype(np.float64) if logits else np.zeros(0)


def save_classifier(network: PatchNetwork, path: str | Path) -> None:
    """Write the weights of a classifier or an ensemble (``members.<i>.`` keys) as safetensors."""
    save_file(
        {name: tensor.detach().contiguous() for name, tensor in network.state_dict().items()}, str(path)
    )


def load_classifier(path: str | Path, sha256: str) -> PatchNetwork:
    """Load safetensors weights after checking their SHA-256: a :class:`NoduleClassifier`, or a
    :class:`NoduleEnsemble` when the keys name members.

    Raises:
        InputError: the file is missing, altered or does not fit the network.
    """
    state = load_state_dict(path, sha256)
    members = {key.split(".")[1] for key in state if key.startswith("members.")}
    network: PatchNetwork = NoduleEnsemble(len(members)) if members else NoduleClassifier()
    try:
        network.load_state_dict(state)
    except RuntimeError as error:
        raise InputError(f"{path}: not a nodule classifier for this MedSegAI version ({error})") from None
    return network.eval()
