"""MONAI RetinaNet detection bundles (the ``lung_nodule_ct_detection`` structure): loading.

The bundle's ``network_def`` (a ``RetinaNet``) and ``anchor_generator`` are built from the
vetted config; the detector's settings come from ``detector`` and from the literal
arguments of the ``detector_ops`` calls (``set_box_selector_parameters``,
``set_sliding_window_inferer``), which are parsed, never run. :func:`load_bundle_detector`
returns a :class:`BundleDetector`; running it on a CT and turning its boxes into findings
is the detection package's part (:mod:`MedSegAILib.detection.bundle_findings`).

MONAI's RetinaNet feature extractor imports two helpers from torchvision. When torchvision
cannot be imported (the CPU-only torch here has no matching torchvision build),
:func:`ensure_torchvision_helpers` supplies equivalents: a layer-output collector and the
trainable-layer count check. They change no computation.
"""

from __future__ import annotations

import ast
from collections import OrderedDict
from typing import Any

import torch
from torch import nn

from ..errors import InputError
from .bundle_config import _REF, instantiate, read_config, resolve_plain
from .card import ModelCard
from .weights import load_state_dict

DETECTOR_OPS = ("set_box_selector_parameters", "set_sliding_window_inferer")
BOX_SELECTOR_DEFAULTS = {
    "score_thresh": 0.05,
    "topk_candidates_per_level": 1000,
    "nms_thresh": 0.5,
    "detections_per_img": 300,
}


class _LayerOutputs(nn.ModuleDict):
    """Runs a backbone's children in order, returning the outputs of the named ones.

    Stands in for torchvision's ``IntermediateLayerGetter`` (same child names, so the same
    state_dict keys).
    """

    def __init__(self, model: nn.Module, return_layers: dict[str, str]) -> None:
        remaining = set(return_layers)
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        for name, child in model.named_children():
            layers[name] = child
            remaining.discard(name)
            if not remaining:
                break
        if remaining:
            raise ValueError(f"backbone has no layers {sorted(remaining)}")
        super().__init__(layers)
        self.return_layers = dict(return_layers)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        outputs: OrderedDict[str, torch.Tensor] = OrderedDict()
        for name, module in self.items():
            x = module(x)
            if name in self.return_layers:
                outputs[self.return_layers[name]] = x
        return outputs


def _trainable_layers(
    is_trained: bool, trainable_layers: int | None, max_value: int, default_value: int
) -> int:
    """How many backbone layers train: the given count, else all (untrained) or the default."""
    if trainable_layers is None:
        trainable_layers = default_value if is_trained else max_value
    if not 0 <= trainable_layers <= max_value:
        raise ValueError(f"trainable layers must be in [0, {max_value}], got {trainable_layers}")
    return trainable_layers


def ensure_torchvision_helpers() -> None:
    """Give MONAI's RetinaNet feature extractor its torchvision helpers when torchvision is absent."""
    # torchvision and monai are imported here, not at the top: they are heavy and only
    # detection bundles need them.
    try:
        import torchvision  # noqa: F401

        return
    except Exception:  # noqa: BLE001 - absent, or present but unloadable (CUDA build on a CPU torch)
        pass
    from types import SimpleNamespace

    import monai.apps.detection.networks.retinanet_network as retinanet_network
    import monai.networks.blocks.backbone_fpn_utils as backbone_fpn_utils

    backbone_fpn_utils.torchvision_models = SimpleNamespace(
        _utils=SimpleNamespace(IntermediateLayerGetter=_LayerOutputs)
    )
    retinanet_network._validate_trainable_layers = _trainable_layers


def detector_settings(config: dict[str, Any], source: str) -> dict[str, Any]:
    """The detector's settings from ``detector`` and the literal ``detector_ops`` arguments.

    Raises:
        InputError: a setting is an expression rather than a literal or a reference.
    """
    detector = config.get("detector", {}) if isinstance(config.get("detector"), dict) else {}
    settings: dict[str, Any] = {
        "spatial_dims": int(resolve_plain(config, detector.get("spatial_dims", 3), source)),
        "num_classes": int(resolve_plain(config, detector.get("num_classes", 1), source)),
        "size_divisible": resolve_plain(config, detector.get("size_divisible", 1), source),
        "box_selector": dict(BOX_SELECTOR_DEFAULTS),
        "sliding_window": {},
    }
    operations = config.get("detector_ops", [])
    for operation in operations if isinstance(operations, list) else []:
        method, arguments = _literal_call(config, operation, source)
        if method == "set_box_selector_parameters":
            settings["box_selector"].update(arguments)
        elif method == "set_sliding_window_inferer":
            settings["sliding_window"] = {k: arguments[k] for k in ("roi_size", "overlap") if k in arguments}
    return settings


def load_bundle_detector(card: ModelCard, device: torch.device) -> BundleDetector:
    """Build the RetinaNet detector of a detection bundle card, with its weights.

    Raises:
        InputError: weights refused (hash, unsafe pickle, mismatch) or config not allowed.
    """
    assert card.folder is not None
    if card.weights.get("format") == "torchscript":
        raise InputError(
            f"{card.folder}: detection bundles need models/model.pt (a state_dict); "
            "TorchScript detectors are not supported"
        )
    ensure_torchvision_helpers()
    from monai.apps.detection.networks.retinanet_detector import (
        RetinaNetDetector,
    )  # heavy; only detection bundles need it

    config_path = card.folder / card.network["config"]
    config = read_config(config_path)
    state = load_state_dict(card.folder / card.weights["file"], card.weights["sha256"])
    network = instantiate(config, "network_def", str(config_path))
    try:
        network.load_state_dict(state)
    except RuntimeError as error:
        first_line = str(error).strip().splitlines()[0]
        raise InputError(
            f"{card.folder / card.weights['file']}: weights do not fit the bundle's RetinaNet ({first_line})"
        ) from None
    anchors = instantiate(config, "anchor_generator", str(config_path))
    settings = card.network["detector"]
    detector = RetinaNetDetector(
        network=network,
        anchor_generator=anchors,
        spatial_dims=settings["spatial_dims"],
        num_classes=settings["num_classes"],
        size_divisible=settings["size_divisible"],
    )
    detector.set_box_selector_parameters(**settings["box_selector"])
    window = settings["sliding_window"]
    detector.set_sliding_window_inferer(
        roi_size=card.network["roi_size"],
        overlap=float(window.get("overlap", card.network.get("overlap", 0.25))),
        sw_batch_size=1,
        mode="constant",
        device=device,
    )
    return BundleDetector(detector, card)


class BundleDetector(nn.Module):
    """A loaded RetinaNet bundle: the MONAI detector plus the card's input conventions."""

    def __init__(self, detector: nn.Module, card: ModelCard) -> None:
        super().__init__()
        self.detector = detector
        self.card = card

    def forward(self, images: list[torch.Tensor]) -> list[dict[str, torch.Tensor]]:
        return self.detector(images, use_inferer=True)


def _literal_call(config: dict[str, Any], text: Any, source: str) -> tuple[str, dict[str, Any]]:
    """Parse ``$@detector.method(key=literal or @ref, ...)`` without running it."""
    if not isinstance(text, str) or not text.startswith("$"):
        return "", {}
    names: list[str] = []

    def placeholder(match) -> str:
        names.append(match.group(1))
        return f"__ref{len(names) - 1}"

    try:
        call = ast.parse(_REF.sub(placeholder, text[1:]).strip(), mode="eval").body
    except SyntaxError:
        return "", {}
    if not (
        isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute) and call.func.attr in DETECTOR_OPS
    ):
        return "", {}
    arguments: dict[str, Any] = {}
    for keyword in call.keywords:
        value = keyword.value
        if isinstance(value, ast.Name) and value.id.startswith("__ref"):
            arguments[str(keyword.arg)] = resolve_plain(config, "@" + names[int(value.id[5:])], source)
        else:
            try:
                arguments[str(keyword.arg)] = ast.literal_eval(value)
            except ValueError:
                raise InputError(
                    f"{source}: {text!r}: argument {keyword.arg!r} must be a literal or an @reference"
                ) from None
    return call.func.attr, arguments
