"""Monte-Carlo samples of a network's dropout head, computed from kept decoder features.

The encoder-decoder (``network.features``) is deterministic and runs once (in the
segmentation pass); only ``network.head`` is stochastic. A sample is one draw of the
head's dropout masks, used for the WHOLE volume: every chunk of the volume sees the same N
networks, as if each sample were one full forward pass.

Two ways to sample:

- :class:`FactorisedDropoutHead` for the head ``Dropout3d -> Conv3d(k) -> activation ->
  Dropout3d -> Conv3d(1x1)`` (``ChestUNet3D``). Channel dropout before a convolution is a
  per-channel scalar, so ``conv(m * f) = sum_c m_c conv_c(f_c)``: the per-input-channel
  partial convolutions ``P_c`` are computed once (one convolution with ``C_in * C_out``
  outputs) and each sample is a small matrix product of its masks with ``P``, plus the
  1x1 layer as a batched matrix product. The cost of the expensive convolution does not
  grow with N; each further sample costs about ``C_in * C_out + C_out * K`` multiply-adds
  per voxel (about 100 for the shipped model, against ~15,000 for one full forward).
- :class:`BatchedDropoutHead` for any other head: the chunk is repeated N times in one
  batch and the head runs with its dropout layers active (normalisation layers stay in
  eval mode); the random generator is re-seeded for every chunk so that all chunks draw
  the same N masks. Its halo is the sum of the head's convolution radii.
"""

from __future__ import annotations

from typing import Iterator, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .maps import softmax

DEFAULT_CHUNK_VOXELS = 65536


class FactorisedDropoutHead:
    """Exact MC-dropout sampling of a ``Dropout3d, Conv3d, act, Dropout3d, Conv3d(1x1)`` head.

    Args:
        head: the ``nn.Sequential`` head (see :func:`is_factorisable`).
        samples: N.
        generator: draws the dropout masks (once, for all chunks).
    """

    def __init__(self, head: nn.Sequential, samples: int, generator: torch.Generator) -> None:
        first_drop, conv, activation, second_drop, last = list(head)
        self.conv, self.activation, self.last = conv, activation, last
        self.halo = (conv.kernel_size[0] // 2) * conv.dilation[0]
        in_channels, out_channels = conv.in_channels, conv.out_channels
        self.masks_first = _channel_masks(samples, in_channels, first_drop.p, generator)
        self.masks_second = _channel_masks(samples, out_channels, second_drop.p, generator)
        # Block weights: output channel c * C_out + o holds W[o, c] on input channel c only.
        block = torch.zeros((in_channels * out_channels, in_channels) + tuple(conv.kernel_size), dtype=conv.weight.dtype)
        for c in range(in_channels):
            block[c * out_channels:(c + 1) * out_channels, c] = conv.weight.detach()[:, c].cpu()
        self.block_weight = block.to(conv.weight.device)

    def __call__(self, features: torch.Tensor, voxels: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Logits of every sample for a chunk.

        Args:
            features: ``(C, d, h, w)`` float32 with ``halo`` voxels of context on each side.
            voxels: optional boolean ``(d - 2*halo, h - 2*halo, w - 2*halo)``: only these.

        Returns:
            ``(N, K, d - 2*halo, h - 2*halo, w - 2*halo)`` logits, or ``(N, K, S)`` for the
            ``S`` selected ``voxels``.
        """
        conv = self.conv
        partial = F.conv3d(features[None], self.block_weight, None, 1, 0, conv.dilation)[0]
        in_channels, out_channels = conv.in_channels, conv.out_channels
        spatial = tuple(partial.shape[1:])
        partial = partial.reshape(in_channels, out_channels, -1)
        if voxels is not None:
            partial, spatial = partial[:, :, voxels.reshape(-1)], (int(voxels.sum()),)
        count = int(np.prod(spatial))
        masks_first = self.masks_first.to(partial.device)
        hidden = (masks_first @ partial.reshape(in_channels, out_channels * count)).reshape(-1, out_channels, count)
        if conv.bias is not None:
            hidden = hidden + conv.bias.detach().reshape(1, -1, 1)
        hidden = self.activation(hidden)
        weight = self.last.weight.detach().reshape(self.last.out_channels, out_channels)
        per_sample = weight[None] * self.masks_second.to(weight.device)[:, None, :]
        logits = torch.bmm(per_sample, hidden)
        if self.last.bias is not None:
            logits = logits + self.last.bias.detach().reshape(1, -1, 1)
        return logits.reshape((logits.shape[0], logits.shape[1]) + spatial)


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

    def __call__(self, features: torch.Tensor, voxels: Optional[torch.Tensor] = None) -> torch.Tensor:
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
        isinstance(first_drop, nn.Dropout3d) and isinstance(second_drop, nn.Dropout3d)
        and isinstance(conv, nn.Conv3d) and isinstance(last, nn.Conv3d)
        and conv.groups == 1 and all(s == 1 for s in conv.stride) and len(set(conv.kernel_size)) == 1
        and len(set(conv.dilation)) == 1 and conv.kernel_size[0] % 2 == 1
        and tuple(last.kernel_size) == (1, 1, 1) and last.groups == 1
        and isinstance(activation, (nn.ReLU, nn.LeakyReLU, nn.GELU, nn.SiLU, nn.ELU, nn.Identity))
    )


def head_sampler(network: nn.Module, samples: int, seed: int, device: torch.device) -> FactorisedDropoutHead | BatchedDropoutHead:
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


def iter_chunks(box: Sequence[slice], chunk_voxels: int = DEFAULT_CHUNK_VOXELS) -> Iterator[tuple[slice, slice, slice]]:
    """Split a ``[k, j, i]`` box into slabs along k of about ``chunk_voxels`` voxels each."""
    k, j, i = box
    per_slice = max(1, (j.stop - j.start) * (i.stop - i.start))
    depth = max(1, chunk_voxels // per_slice)
    for start in range(k.start, k.stop, depth):
        yield slice(start, min(k.stop, start + depth)), j, i


def features_with_halo(features: np.ndarray, chunk: Sequence[slice], halo: int, device: torch.device) -> torch.Tensor:
    """The float32 features of ``chunk`` plus ``halo`` voxels around it (zeros outside the grid)."""
    shape = features.shape[1:]
    padded = torch.zeros((features.shape[0],) + tuple(s.stop - s.start + 2 * halo for s in chunk), dtype=torch.float32)
    source, target = [], []
    for part, n in zip(chunk, shape):
        low, high = max(0, part.start - halo), min(n, part.stop + halo)
        source.append(slice(low, high))
        target.append(slice(low - (part.start - halo), high - (part.start - halo)))
    padded[(slice(None),) + tuple(target)] = torch.from_numpy(np.asarray(features[(slice(None),) + tuple(source)], dtype=np.float32))
    return padded.to(device)


def _channel_masks(samples: int, channels: int, p: float, generator: torch.Generator) -> torch.Tensor:
    """``(samples, channels)`` dropout masks: 0 with probability ``p``, else ``1 / (1 - p)``."""
    if p <= 0.0:
        return torch.ones(samples, channels)
    keep = torch.rand(samples, channels, generator=generator) >= p
    return keep.float() / (1.0 - p)


def sample_probabilities(
    sampler: FactorisedDropoutHead | BatchedDropoutHead,
    features: np.ndarray,
    chunk: Sequence[slice],
    device: torch.device,
    temperature: Optional[float] = None,
    voxels: Optional[torch.Tensor] = None,
) -> torch.Tensor:
    """Softmax of every sample on ``chunk``: ``(N, K, d, h, w)`` float32 on ``device``, or
    ``(N, K, S)`` for the ``S`` selected ``voxels`` (boolean ``(d, h, w)``)."""
    with torch.inference_mode():
        logits = sampler(features_with_halo(features, chunk, sampler.halo, device), voxels)
        if temperature is not None:
            logits = logits / temperature
        return softmax(logits.float(), dim=1)
