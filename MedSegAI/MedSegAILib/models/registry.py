"""Installed models: find them, resolve a name or path to a card, and load one.

Installed models are the model folders (each with a ``model_card.json``) under:

1. the built-in folder ``MedSegAILib/models/builtin/`` (shipped with the package);
2. the user folder ``$MEDSEGAI_MODELS``, or ``~/.medsegai/models`` when that is unset.

A built-in model wins over a user model with the same name.

Loading is delegated to :data:`LOADERS`, a tuple of loader functions tried in order.
Each takes ``(card, device)`` and returns a :class:`~.loaded.LoadedModel`, or ``None`` when the
card's format is not its own. To support another model format (a MONAI bundle, a
TorchScript file), write such a function and append it to the tuple::

    LOADERS = (load_state_dict_model, load_monai_bundle, load_torchscript_model)

The built-in loader handles cards whose ``weights.format`` is ``safetensors`` or
``state_dict`` (or absent) and whose ``network.name`` is in ``models/networks.py``.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from ..errors import InputError
from .bundle import load_monai_bundle
from .card import CARD_FILE, ModelCard, load_model_card
from .loaded import LoadedModel, ModelLoader
from .networks import NETWORKS, build_network
from .torchscript import load_torchscript_model
from .weights import load_state_dict

BUILTIN_DIR = Path(__file__).resolve().parent / "builtin"
DEFAULT_MODEL = "chest_ct"
STATE_DICT_FORMATS = ("safetensors", "state_dict")


def user_models_dir() -> Path:
    """The user model folder: ``$MEDSEGAI_MODELS`` or ``~/.medsegai/models``."""
    configured = os.environ.get("MEDSEGAI_MODELS")
    return Path(configured).expanduser() if configured else Path.home() / ".medsegai" / "models"


def model_search_dirs() -> tuple[Path, ...]:
    """The folders whose sub-folders are installed models, in priority order."""
    return (BUILTIN_DIR, user_models_dir())


def installed_models(problems: list[str] | None = None) -> list[ModelCard]:
    """The cards of all installed models (first one wins on a name clash), sorted by name.

    Args:
        problems: if given, a broken model folder is skipped and its message appended here.

    Raises:
        InputError: an installed model's card is broken and ``problems`` is ``None``.
    """
    cards: dict[str, ModelCard] = {}
    for root in model_search_dirs():
        if not root.is_dir():
            continue
        for folder in sorted(p for p in root.iterdir() if (p / CARD_FILE).is_file()):
            try:
                card = load_model_card(folder)
            except InputError as error:
                if problems is None:
                    raise
                problems.append(str(error))
                continue
            cards.setdefault(card.name, card)
    return sorted(cards.values(), key=lambda card: card.name)


def resolve_model(name_or_path: str | None = None) -> ModelCard:
    """The card of an installed model (by name) or of a model folder (by path).

    Args:
        name_or_path: a model name from :func:`installed_models`, a path to a model folder
            or to its ``model_card.json``; ``None`` means the default chest CT model.

    Raises:
        InputError: unknown name (the message lists the installed models), or a broken card.
    """
    wanted = DEFAULT_MODEL if name_or_path is None else str(name_or_path)
    path = Path(wanted).expanduser()
    if path.name == CARD_FILE and path.is_file():
        return load_model_card(path.parent)
    if path.is_dir():
        return load_model_card(path)
    problems: list[str] = []
    cards = installed_models(problems)
    for card in cards:
        if card.name == wanted:
            return card
    available = ", ".join(card.name for card in cards) or "none"
    broken = (
        f"; {len(problems)} installed model folder(s) have broken cards: {'; '.join(problems)}"
        if problems
        else ""
    )
    raise InputError(
        f"{wanted}: no such model or model folder; installed models: {available} "
        f"(see `medsegai models list`), or give the path of a folder holding model_card.json{broken}"
    )


def load_state_dict_model(card: ModelCard, device: torch.device) -> LoadedModel | None:
    """Loader for our own format: a network from ``models/networks.py`` plus a state_dict.

    Returns:
        The loaded model, or ``None`` if the card is in another format.

    Raises:
        InputError: unsafe/mismatched weights, or weights that do not fit the network.
    """
    if (
        card.weights.get("format", "safetensors") not in STATE_DICT_FORMATS
        or card.network["name"] not in NETWORKS
    ):
        return None
    assert card.folder is not None, "cards of installed models know their folder"
    state = load_state_dict(card.folder / card.weights["file"], card.weights["sha256"])
    network = build_network(card.network["name"], **card.network.get("kwargs", {}))
    try:
        network.load_state_dict(
            {name: tensor.float() if tensor.is_floating_point() else tensor for name, tensor in state.items()}
        )
    except RuntimeError as error:
        first_line = str(error).strip().splitlines()[0]
        raise InputError(
            f"{card.folder / card.weights['file']}: weights do not fit network {card.network['name']!r} "
            f"with the card's kwargs ({first_line}); fix network.kwargs in the model card"
        ) from None
    return LoadedModel(card=card, network=network.to(device).eval(), device=device)


LOADERS: tuple[ModelLoader, ...] = (load_state_dict_model, load_monai_bundle, load_torchscript_model)


def load_model(card: ModelCard, device: torch.device | str = "cpu") -> LoadedModel:
    """Load a model with the first loader in :data:`LOADERS` that accepts its card.

    On the CPU the network's weights are put in channels-last (NDHWC) memory order, which
    lets PyTorch use its oneDNN 3-D convolutions (about 3x faster than the default order).

    Raises:
        InputError: no loader knows the card's format, or its weights are refused.
    """
    device = torch.device(device)
    for loader in LOADERS:
        loaded = loader(card, device)
        if loaded is not None:
            if device.type == "cpu":
                loaded.network.to(memory_format=torch.channels_last_3d)
            return loaded
    raise InputError(
        f"{card.folder or card.name}: no loader for network {card.network['name']!r} with weights format "
        f"{card.weights.get('format', 'safetensors')!r}; known networks: {', '.join(sorted(NETWORKS))}"
    )
