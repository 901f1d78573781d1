"""TorchScript models with a model card beside them.

A TorchScript model folder holds ``model.ts`` (from ``torch.jit.save``) and a
``model_card.json`` whose ``network`` is ``{"name": "torchscript", ...}`` and whose
``weights`` is ``{"file": "model.ts", "sha256": ..., "format": "torchscript"}``. By default
the network receives what our own networks receive (``(B, 1, k, j, i)`` in canonical LPS,
HU mapped to ``[-1, 1]`` by the card's window); the card may say otherwise with
``network.axcodes`` (e.g. ``"RAS"`` for a MONAI-trained network, whose input axes are
``x, y, z``), ``network.intensity_range`` (``[b_min, b_max]``) and ``network.roi_size``
(run in sliding-window patches of that size, in the network's axis order).

Loading checks the SHA-256 first. A TorchScript archive holds TorchScript code and tensors,
read by PyTorch's own restricted loader: it cannot import or call arbitrary Python.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import torch

from ..errors import InputError
from .adapter import ENGINE_AXCODES, AdaptedNetwork
from .card import ModelCard
from .loaded import LoadedModel
from .weights import verify_sha256

TORCHSCRIPT_NETWORK = "torchscript"
TORCHSCRIPT_FORMAT = "torchscript"


def load_torchscript(
    path: str | os.PathLike, sha256: str, device: torch.device | str = "cpu"
) -> torch.jit.ScriptModule:
    """Load a TorchScript archive after checking its SHA-256.

    Raises:
        InputError: missing file, hash mismatch, or not a TorchScript archive.
    """
    path = Path(path)
    verify_sha256(path, sha256)
    if not zipfile.is_zipfile(path):
        raise InputError(
            f"{path}: not a TorchScript archive (torch.jit.save writes a zip); "
            "export the model with torch.jit.save"
        )
    try:
        return torch.jit.load(str(path), map_location=device).eval()
    except RuntimeError as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else "unreadable"
        raise InputError(
            f"{path}: cannot load the TorchScript model ({first_line}); export it again with torch.jit.save"
        ) from None


def load_torchscript_model(card: ModelCard, device: torch.device) -> LoadedModel | None:
    """Registry loader for TorchScript model folders (``network.name == "torchscript"``).

    Returns:
        The model wrapped to the engine's conventions, or ``None`` for other cards.

    Raises:
        InputError: the weights are refused or the card's settings are invalid.
    """
    if card.network.get("name") != TORCHSCRIPT_NETWORK:
        return None
    assert card.folder is not None, "cards of installed models know their folder"
    if card.weights.get("format", TORCHSCRIPT_FORMAT) != TORCHSCRIPT_FORMAT:
        raise InputError(f'{card.folder}: a torchscript network needs weights.format "torchscript"')
    module = load_torchscript(card.folder / card.weights["file"], card.weights["sha256"], device)
    try:
        network = AdaptedNetwork(
            module,
            axcodes=str(card.network.get("axcodes", ENGINE_AXCODES)),
            intensity_range=card.network.get("intensity_range"),
            roi_size=card.network.get("roi_size"),
            overlap=float(card.network.get("overlap", 0.25)),
        )
    except ValueError as error:
        raise InputError(f"{card.folder}: model card network settings are invalid ({error})") from None
    return LoadedModel(card=card, network=network.to(device).eval(), device=device)
