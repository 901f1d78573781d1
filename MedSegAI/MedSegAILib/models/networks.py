"""Network definitions that model cards can name.

Every segmentation network here splits into ``features(x)`` (the deterministic
encoder-decoder, run once) and ``head(features)`` (a small dropout head that Monte-Carlo
uncertainty samples many times). ``forward(x) == head(features(x))``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn


def _conv_block(in_channels: int, out_channels: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv3d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm3d(out_channels),
        nn.LeakyReLU(0.01, inplace=True),
        nn.Conv3d(out_channels, out_channels, 3, padding=1, bias=False),
        nn.BatchNorm3d(out_channels),
        nn.LeakyReLU(0.01, inplace=True),
    )


class ChestUNet3D(nn.Module):
    """A compact 3-D U-Net for CPU inference, with a Monte-Carlo dropout head.

    Args:
        in_channels: input channels (1 for CT).
        out_channels: classes, background included.
        channels: feature channels per resolution level, finest first; each further
            level halves the resolution with a strided convolution.
        head_dropout: dropout probability in the head (active only in training mode or
            when sampled for uncertainty).

    The input's spatial size must be divisible by ``2 ** (len(channels) - 1)``.
    Grad-CAM's default target layer is ``decoder.0`` (the finest decoder block).
    """

    def __init__(
        self,
        in_channels: int = 1,
        out_channels: int = 4,
        channels: tuple[int, ...] = (16, 32, 48, 64),
        head_dropout: float = 0.2,
    ) -> None:
        super().__init__()
        channels = tuple(channels)
        self.divisor = 2 ** (len(channels) - 1)
        self.encoder = nn.ModuleList(
            [_conv_block(in_channels, channels[0])]
            + [_conv_block(channels[i - 1], channels[i], stride=2) for i in range(1, len(channels))]
        )
        self.upsample = nn.ModuleList(
            [
                nn.ConvTranspose3d(channels[i], channels[i - 1], 2, stride=2)
                for i in range(len(channels) - 1, 0, -1)
            ]
        )
        # decoder[0] is the finest level; built coarse-to-fine, then reversed for naming.
        decoder = [_conv_block(2 * channels[i - 1], channels[i - 1]) for i in range(len(channels) - 1, 0, -1)]
        self.decoder = nn.ModuleList(decoder[::-1])
        self.head_layers = nn.Sequential(
            nn.Dropout3d(head_dropout),
            nn.Conv3d(channels[0], channels[0], 3, padding=1),
            nn.LeakyReLU(0.01, inplace=True),
            nn.Dropout3d(head_dropout),
            nn.Conv3d(channels[0], out_channels, 1),
        )

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The deterministic encoder-decoder: ``(B, C_in, D, H, W) -> (B, channels[0], D, H, W)``."""
        skips = []
        for block in self.encoder:
            x = block(x)
            skips.append(x)
        x = skips.pop()
        levels = len(self.decoder)
        for step, up in enumerate(self.upsample):
            x = up(x)
            x = self.decoder[levels - 1 - step](torch.cat([x, skips.pop()], dim=1))
        return x

    def head(self, features: torch.Tensor) -> torch.Tensor:
        """Class logits from decoder features; stochastic when dropout is active."""
        return self.head_layers(features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


NETWORKS: dict[str, Callable[..., nn.Module]] = {"ChestUNet3D": ChestUNet3D}


def build_network(name: str, **kwargs: Any) -> nn.Module:
    """Instantiate a network named in a model card.

    Raises:
        KeyError: ``name`` is not a known network.
    """
    if name not in NETWORKS:
        raise KeyError(f"unknown network {name!r}; known: {', '.join(sorted(NETWORKS))}")
    return NETWORKS[name](**kwargs)
