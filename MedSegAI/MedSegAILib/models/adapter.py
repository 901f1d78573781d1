"""Adapting a foreign network's input conventions to the engine's.

The engine hands a network ``(B, C, k, j, i)`` tensors in canonical LPS orientation (array
axes run towards Superior, Posterior, Left: axis codes ``"SPL"``), with intensities
normalised to ``[-1, 1]`` by the card's ``window`` normalisation. A MONAI bundle expects
``(B, C, x, y, z)`` in the orientation its ``Orientationd`` names (usually ``"RAS"``:
towards Right, Anterior, Superior) and intensities scaled to ``[b_min, b_max]`` by
``ScaleIntensityRanged``; both are clipped linear maps of the same HU window, so one affine
map converts exactly. :class:`AdaptedNetwork` does both conversions, optionally runs
MONAI's sliding window with the bundle's own patch size, and maps the output back.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

ENGINE_AXCODES = "SPL"
_AXIS_OF_LETTER = {"S": 0, "I": 0, "P": 1, "A": 1, "L": 2, "R": 2}


def axes_for(axcodes: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Spatial permutation and flips taking engine axes (``SPL``) to ``axcodes``.

    Returns:
        ``(order, flips)``: target spatial axis ``t`` is engine axis ``order[t]``, reversed
        when ``t in flips``.

    Raises:
        ValueError: ``axcodes`` is not three letters naming each of the three axes once.
    """
    codes = axcodes.upper()
    if len(codes) != 3 or sorted(_AXIS_OF_LETTER.get(c, -1) for c in codes) != [0, 1, 2]:
        raise ValueError(f"axis codes {axcodes!r} must name the L/R, A/P and S/I axes once each")
    order = tuple(_AXIS_OF_LETTER[c] for c in codes)
    flips = tuple(t for t, c in enumerate(codes) if c != ENGINE_AXCODES[order[t]])
    return order, flips


def to_network_layout(
    x: torch.Tensor, axcodes: str, intensity_range: Sequence[float] | None = None
) -> torch.Tensor:
    """Engine ``(B, C, k, j, i)`` in ``[-1, 1]`` -> a network's ``axcodes`` layout and range."""
    order, flips = axes_for(axcodes)
    if intensity_range is not None:
        low, high = float(intensity_range[0]), float(intensity_range[1])
        x = low + (x + 1.0) * (0.5 * (high - low))
    x = x.permute(0, 1, *(2 + axis for axis in order))
    return torch.flip(x, [2 + t for t in flips]) if flips else x


def to_engine_layout(y: torch.Tensor, axcodes: str) -> torch.Tensor:
    """A network's ``(B, C, ...)`` output in ``axcodes`` layout -> engine ``(B, C, k, j, i)``."""
    order, flips = axes_for(axcodes)
    if flips:
        y = torch.flip(y, [2 + t for t in flips])
    inverse = [0] * 3
    for target, source in enumerate(order):
        inverse[source] = target
    return y.permute(0, 1, *(2 + axis for axis in inverse))


class AdaptedNetwork(nn.Module):
    """Wraps a network trained on another layout and intensity range.

    Args:
        network: the foreign network (``nn.Module`` or TorchScript).
        axcodes: the orientation its input axes run towards (e.g. ``"RAS"``).
        intensity_range: ``(b_min, b_max)`` its inputs were scaled to; ``None`` keeps the
            engine's ``[-1, 1]``.
        roi_size: run the network with MONAI's sliding window in patches of this size
            (in the network's own axis order); ``None`` calls it on the whole input.
        overlap: the sliding-window overlap.

    ``divisor`` is 1: with a sliding window any input size is accepted.
    """

    def __init__(
        self,
        network: nn.Module,
        axcodes: str = ENGINE_AXCODES,
        intensity_range: Sequence[float] | None = None,
        roi_size: Sequence[int] | None = None,
        overlap: float = 0.25,
    ) -> None:
        super().__init__()
        self.network = network
        axes_for(axcodes)  # validate early
        self.axcodes = axcodes
        self.intensity_range = (
            None if intensity_range is None else (float(intensity_range[0]), float(intensity_range[1]))
        )
        self.roi_size = None if roi_size is None else tuple(int(s) for s in roi_size)
        self.overlap = float(overlap)
        self.divisor = 1 if roi_size is not None else int(getattr(network, "divisor", 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = to_network_layout(x, self.axcodes, self.intensity_range)
        if self.roi_size is None:
            y = self.network(x)
        else:
            from monai.inferers import (
                sliding_window_inference,
            )  # monai is slow to import; only patch-wise networks need it

            y = sliding_window_inference(
                x, self.roi_size, 1, self.network, overlap=self.overlap, mode="gaussian"
            )
        return to_engine_layout(y, self.axcodes)
