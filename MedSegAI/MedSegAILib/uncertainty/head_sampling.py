"""Monte-Carlo samples of a network's dropout head, computed from kept decoder features.

The encoder-decoder (``network.features``) is deterministic and runs once (in the
segmentation pass); only ``network.head`` is stochastic. A sample is one draw of the
head's dropout masks, used for the WHOLE volume: every chunk of the volume sees the same N
networks, as if each sample were one full forward pass.

Two ways to sample:

- :class:`FactorisedDropoutHead` for the head ``Dropout3d -> Conv3d(k) -> activation ->
  Dropout3d -> Conv3d(1x1)`` (``ChestUNet3D``). Channel dropout before a convolution is a
  per-channel scalar, so ``conv(m * f) = sum_c m_c conv_c(f_c)``: for the selected voxels
  only, the per-input-channel partial convolutions ``P_c`` are computed once (from the
  gathered ``k^3`` neighbourhoods, ``C_in * C_out * k^3`` multiply-adds per voxel, about
  1,700 for the shipped model) and each sample is a small matrix product of its masks
  with ``P``, plus the 1x1 layer as a batched matrix product (about ``C_in * C_out +
  C_out * K`` = 100 multiply-adds per voxel and sample, against ~15,000 for one full
  forward pass).
- :class:`BatchedDropoutHead` for any other head: the chunk is repeated N times in one
  batch and the head runs with its dropout layers active (normalisation layers stay in
  eval mode); the random generator is re-seeded for every chunk so that all chunks draw
  the same N masks. Its halo is the sum of the head's convolution radii.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch import nn

DEFAULT_CHUNK_VOXELS = 65536
GATHER_BATCH = 4096


class FactorisedDropoutHead:
    """Exact MC-dropout sampling of a ``Dropout3d, Conv3d, act, Dropout3d, Conv3d(1x1)`` head.

    Channel dropout before a convolution scales each input channel by one scalar, so
    ``conv(m * f) = sum_c m_c P_c`` with ``P_c`` the convolution of channel ``c`` alone.
    For the selected voxels only, the ``k^3`` neighbours of each channel are gathered, the
    partial convolutions ``P_c`` computed once (a batched matrix product, ``C_in * C_out *
    k^3`` multiply-adds per voxel), and each sample is the product of its masks with them,
    plus the 1x1 layer as a batched matrix product.

    Args:
        head: the ``nn.Sequential`` head (see :func:`is_factorisable`).
        samples: N.
        generator: draws the dropout masks (once, for all chunks).
    """

    def __init__(self, head: nn.Sequential, samples: int, generator: torch.Generator) -> None:
        first_drop, conv, activation, second_drop, last = list(head)
        self.activation = activation
        size, dilation = conv.kernel_size[0], conv.dilation[0]
        self.halo = (size // 2) * dilation
        self._steps = torch.arange(size) * dilation
        in_channels, out_channels = conv.in_channels, conv.out_channels
        self.masks_first = _channel_masks(samples, in_channels, first_drop.p, generator)
        self.masks_second = _channel_masks(samples, out_channels, second_drop.p, generator)
        weight = conv.weight.detach()
        self.partial_weight = (
            weight.transpose(0, 1).reshape(in_channels, out_channels, -1).contiguous()
        )  # (C_in, C_out, k^3)
        self.first_bias = None if conv.bias is None else conv.bias.detach().reshape(1, -1, 1)
        last_weight = last.weight.detach().reshape(last.out_channels, out_channels)
        self.last_weight = (
            last_weight[None] * self.masks_second.to(weight.device)[:, None, :]
        ).contiguous()  # (N, K, C_out)
        self.last_bias = None if last.bias is None else last.bias.detach().reshape(1, -1, 1)

    def __call__(self, features: torch.Tensor, voxels: torch.Tensor | None = None) -> torch.Tensor:
        """Logits of every sample for a chunk.

        Args:
            features: ``(C, d, h, w)`` float32 with ``halo`` voxels of context on each side.
            voxels: optional boolean ``(d - 2*halo, h - 2*halo, w - 2*halo)``: only these.

        Returns:
            ``(N, K, d - 2*halo, h - 2*halo, w - 2*halo)`` logits, or ``(N, K, S)`` for the
            ``S`` selected ``voxels``.
        """
        h = self.halo
        channels, depth, height, width = features.shape
        inner = (depth - 2 * h, height - 2 * h, width - 2 * h)
        device = features.device
        whole = voxels is None
        k, j, i = (torch.ones(inner, dtype=torch.bool, device=device) if whole else voxels).nonzero(
            as_tuple=True
        )
        corners = (k * height + j) * width + i  # each neighbourhood's first voxel, flat in the padded chunk
        steps = self._steps.to(device)
        offsets = (
            (steps[:, None, None] * height + steps[None, :, None]) * width + steps[None, None, :]
        ).reshape(-1, 1)
        flat = features.reshape(channels, -1)
        samples, classes, out_channels = self.last_weight.shape
        partial_weight, masks_first = self.partial_weight.to(device), self.masks_first.to(device)
        last_weight = self.last_weight.to(device)
        logits = torch.empty((samples, classes, corners.numel()), dtype=features.dtype, device=device)
        for start in range(0, corners.numel(), GATHER_BATCH):
            batch = corners[start : start + GATHER_BATCH]
            count = batch.numel()
            neighbours = flat.index_select(1, (offsets + batch).reshape(-1)).reshape(
                channels, -1, count
            )  # (C_in, k^3, B)
            partial = torch.bmm(partial_weight, neighbours)  # (C_in, C_out, B): P_c
            hidden = (masks_first @ partial.reshape(channels, -1)).reshape(samples, out_channels, count)
            if self.first_bias is not None:
                hidden += self.first_bias.to(device)
            logits[:, :, start : start + count] = torch.bmm(last_weight, self.activation(hidden))
        if self.last_bias is not None:
            logits += self.last_bias.to(device)
        return logits.reshape((samples, classes) + inner) if whole else logits


class BatchedDropoutHead:
    """MC-dropout sampling of any head: N copies in one batch, dropout layers active.

    Args:
        head: the head module (called on ``(N, C, d, h, w)``).
        samples: N.
        seed: re-seeded before every chunk, so all chunks draw the same masks.
    """

    def __init__(self, head: nn.Module, samples: int, seed: int) -> None:
        self.head, self.samples, self.seed = head, samples, seed
        self.halo = sum(
            (m.kernel_size[0] // 2) * m.dilation[0] for m in head.modules() if isinstance(m, nn.Conv3d)
        )

    def __call__(self, features: torch.Tensor, voxels: torch.Tensor | None = None) -> torch.Tensor:
        """Logits of every sample for a chunk (see :meth:`FactorisedDropoutHead.__call__`)."""
        dropouts = [m for m in self.head.modules() if isinstance(m, nn.modules.dropout._DropoutNd)]
        devices = [features.device] if features.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(self.seed)
            for module in dropouts:
                module.train()
            try:
                logits = self.head(features[None].expand(self.samples, *features.shape).contiguous())
            finally:
                for module in dropouts:
                    module.eval()
        h = self.halo
        if h:
            logits = logits[:, :, h:-h, h:-h, h:-h]
        return logits if voxels is None else logits[:, :, voxels]


def is_factorisable(head: nn.Module) -> bool:
    """Whether ``head`` is ``Dropout3d, Conv3d, activation, Dropout3d, Conv3d(1x1)``."""
    if not isinstance(head, nn.Sequential) or len(head) != 5:
        return False
    first_drop, conv, activation, second_drop, last = list(head)
    return (
        isinstance(first_drop, nn.Dropout3d)
        and isinstance(second_drop, nn.Dropout3d)
        and isinstance(conv, nn.Conv3d)
        and isinstance(last, nn.Conv3d)
        and conv.groups == 1
        and all(s == 1 for s in conv.stride)
        and len(set(conv.kernel_size)) == 1
        and len(set(conv.dilation)) == 1
        and conv.kernel_size[0] % 2 == 1
        and tuple(last.kernel_size) == (1, 1, 1)
        and last.groups == 1
        and isinstance(activation, (nn.ReLU, nn.LeakyReLU, nn.GELU, nn.SiLU, nn.ELU, nn.Identity))
    )


def head_sampler(
    network: nn.Module, samples: int, seed: int, device: torch.device
) -> FactorisedDropoutHead | BatchedDropoutHead:
    """The sampler for ``network``'s head: factorised when its structure allows, else batched.

    Raises:
        ValueError: the network has no ``head()`` with dropout to sample.
    """
    head = getattr(network, "head_layers", None)
    if head is None or not hasattr(network, "features"):
        raise ValueError("the network has no features()/head() split to sample a dropout head from")
    if not any(isinstance(m, nn.modules.dropout._DropoutNd) for m in head.modules()):
        raise ValueError("the network's head has no dropout layer; Monte-Carlo dropout needs one")
    if is_factorisable(head):
        generator = torch.Generator().manual_seed(seed)
        return FactorisedDropoutHead(head, samples, generator)
    return BatchedDropoutHead(head, samples, seed)


def iter_chunks(
    box: Sequence[slice], chunk_voxels: int = DEFAULT_CHUNK_VOXELS
) -> Iterator[tuple[slice, slice, slice]]:
    """Split a ``[k, j, i]`` box into slabs along k of about ``chunk_voxels`` voxels each."""
    k, j, i = box
    per_slice = max(1, (j.stop - j.start) * (i.stop - i.start))
    depth = max(1, chunk_voxels // per_slice)
    for start in range(k.start, k.stop, depth):
        yield slice(start, min(k.stop, start + depth)), j, i


def features_with_halo(
    features: np.ndarray, chunk: Sequence[slice], halo: int, device: torch.device
) -> torch.Tensor:
    """The float32 features of ``chunk`` plus ``halo`` voxels around it (zeros outside the grid)."""
    shape = features.shape[1:]
    padded = torch.zeros(
        (features.shape[0],) + tuple(s.stop - s.start + 2 * halo for s in chunk), dtype=torch.float32
    )
    source, target = [], []
    for part, n in zip(chunk, shape):
        low, high = max(0, part.start - halo), min(n, part.stop + halo)
        source.append(slice(low, high))
        target.append(slice(low - (part.start - halo), high - (part.start - halo)))
    padded[(slice(None),) + tuple(target)] = torch.from_numpy(
        features[(slice(None),) + tuple(source)]
    )  # torch converts float16 fast
    return padded.to(device)


def _channel_masks(samples: int, channels: int, p: float, generator: torch.Generator) -> torch.Tensor:
    """``(samples, channels)`` dropout masks: 0 with probability ``p``, else ``1 / (1 - p)``."""
    if p <= 0.0:
        return torch.ones(samples, channels)
    keep = torch.rand(samples, channels, generator=generator) >= p
    return keep.float() / (1.0 - p)
