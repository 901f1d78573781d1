"""The loaded-model type that every loader returns and the engine consumes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from .card import ModelCard


@dataclass(frozen=True)
class LoadedModel:
    """A network ready for inference: its card, the module (eval mode) and its device."""

    card: ModelCard
    network: nn.Module
    device: torch.device


ModelLoader = Callable[[ModelCard, torch.device], LoadedModel | None]
