"""MONAI bundles (model-zoo layout) as MedSegAI models.

A bundle folder holds ``configs/metadata.json``, ``configs/inference.json`` (or
``.yaml``/``.yml``) and ``models/model.pt`` (a state_dict) or ``models/model.ts``
(TorchScript). :func:`bundle_card_data` reads them into a model card:

- labels from ``metadata.json`` ``network_data_format.outputs.pred.channel_def``, mapped
  to SNOMED terminology where :mod:`.terminology` knows the name (else a local code in
  the ``99MEDSEGAI`` scheme); a detection bundle without a ``channel_def`` gets one label,
  ``lung nodule`` when its name or task mentions nodules;
- spacing from ``Spacingd.pixdim``, the HU window from ``ScaleIntensityRanged``,
  orientation from ``Orientationd.axcodes`` (``RAS`` when absent), patch size from the
  inferer's ``roi_size`` (or the detector's sliding-window ``roi_size``);
- task ``detection`` when ``network_def`` is MONAI's ``RetinaNet``, else ``segmentation``.

:func:`load_monai_bundle` is a loader for :data:`.registry.LOADERS`: it instantiates
``network_def`` through the vetted :func:`.bundle_config.instantiate` (never the rest of
the config), loads the weights safely after checking their SHA-256, and wraps the network
in :class:`.adapter.AdaptedNetwork` so the engine runs it like its own models. A detection
bundle loads as a :class:`.bundle_detection.BundleDetector` (see that module).
"""

from __future__ import annotations

import colorsys
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..errors import InputError
from .adapter import AdaptedNetwork
from .bundle_config import instantiate, read_config, resolve_plain, target_module
from .bundle_detection import detector_settings, load_bundle_detector
from .card import ModelCard
from .loaded import LoadedModel
from .terminology import ANATOMICAL_STRUCTURE, coded, terminology_for
from .torchscript import load_torchscript
from .weights import load_state_dict, sha256_of_file

BUNDLE_NETWORK = "monai_bundle"
METADATA_FILE = Path("configs") / "metadata.json"
CONFIG_FILES = tuple(Path("configs") / f"inference.{ext}" for ext in ("json", "yaml", "yml"))
WEIGHT_FILES = (Path("models") / "model.pt", Path("models") / "model.ts")
LOCAL_SCHEME = "99MEDSEGAI"
RETINANET = "monai.apps.detection.networks.retinanet_network.RetinaNet"


@dataclass(frozen=True)
class BundleFiles:
    """The files of a bundle in the model-zoo layout."""

    root: Path
    metadata: Path
    config: Path
    weights: Path


def find_bundle_files(root: str | Path) -> BundleFiles:
    """Locate a bundle's metadata, inference config and weights.

    Raises:
        InputError: a required file is missing (the message lists what a bundle needs).
    """
    root = Path(root)
    metadata = root / METADATA_FILE
    config = next((root / c for c in CONFIG_FILES if (root / c).is_file()), None)
    weights = next((root / w for w in WEIGHT_FILES if (root / w).is_file()), None)
    missing = [str(METADATA_FILE)] if not metadata.is_file() else []
    missing += ["configs/inference.json (or .yaml)"] if config is None else []
    missing += ["models/model.pt or models/model.ts"] if weights is None else []
    if missing:
        raise InputError(
            f"{root}: not a MONAI bundle, missing {', '.join(missing)}; see docs/models.md for the layout"
        )
    return BundleFiles(root=root, metadata=metadata, config=config, weights=weights)  # type: ignore[arg-type]


def is_bundle(path: str | Path) -> bool:
    """True if ``path`` is a folder with a bundle's ``configs/metadata.json``."""
    return (Path(path) / METADATA_FILE).is_file()


def bundle_card_data(root: str | Path, name: str | None = None) -> dict[str, Any]:
    """Build the model card dictionary for a bundle (see the module docstring).

    Args:
        root: the bundle folder.
        name: the model name; default the folder name (model-zoo bundles are named so).

    Returns:
        A card dictionary that :func:`.card.parse_model_card` accepts; weights paths are
        relative to ``root``.

    Raises:
        InputError: files missing or unreadable, or settings MedSegAI cannot take over.
    """
    files = find_bundle_files(root)
    try:
        metadata = json.loads(files.metadata.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InputError(f"{files.metadata}: not valid JSON ({error})") from None
    config = read_config(files.config)
    source = str(files.config)
    if "network_def" not in config:
        raise InputError(f"{source}: no network_def item; MedSegAI builds the network from it")
    task = "detection" if _network_target(config, source) == RETINANET else "segmentation"
    transforms = _preprocessing(config, source)
    spacing = _transform_setting(config, transforms, "Spacingd", "pixdim", source)
    scale = _transform(transforms, "ScaleIntensityRanged")
    if spacing is None or scale is None:
        what = (
            "Spacingd (the model's voxel spacing)"
            if spacing is None
            else "ScaleIntensityRanged (the CT window)"
        )
        raise InputError(
            f"{source}: preprocessing has no {what}; MedSegAI needs it to prepare CT for this bundle"
        )
    window = [
        float(resolve_plain(config, scale.get(key), source)) for key in ("a_min", "a_max", "b_min", "b_max")
    ]
    axcodes = _transform_setting(config, transforms, "Orientationd", "axcodes", source) or "RAS"
    roi, overlap = _patch(config, metadata, task, source)
    classes = _class_names(metadata, task)
    weights_format = "torchscript" if files.weights.suffix == ".ts" else "state_dict"
    network: dict[str, Any] = {
        "name": BUNDLE_NETWORK,
        "config": files.config.relative_to(files.root).as_posix(),
        "axcodes": str(axcodes),
        "intensity_range": window[2:],
        "roi_size": roi,
        "overlap": overlap,
        "output_classes": classes,
    }
    if task == "detection":
        network["detector"] = detector_settings(config, source)
    licence_file = files.root / "LICENSE"
    return {
        "name": name or files.root.resolve().name,
        "version": str(metadata.get("version", "0")),
        "task": task,
        "description": str(metadata.get("description", "")),
        "labels": [_label(value, class_name) for value, class_name in enumerate(classes) if value > 0],
        "input": {
            "spacing": [float(s) for s in resolve_plain(config, spacing, source)],
            "normalization": {"type": "window", "min": window[0], "max": window[1]},
            "patch_size": list(reversed(roi)),
        },
        "network": network,
        "weights": {
            "file": files.weights.relative_to(files.root).as_posix(),
            "sha256": sha256_of_file(files.weights),
            "format": weights_format,
        },
        "training": {
            "source": "MONAI bundle",
            "data_source": metadata.get("data_source", ""),
            "authors": metadata.get("authors", ""),
            "copyright": metadata.get("copyright", ""),
            "references": metadata.get("references", []),
            "licence": licence_file.read_text(errors="replace").strip().splitlines()[0]
            if licence_file.is_file()
            else "",
        },
        "metrics": dict(metadata.get("eval_metrics", {})),
        "limits": [
            str(metadata.get("intended_use", "see the bundle's documentation")),
            "imported MONAI bundle: MedSegAI has not validated its accuracy",
        ],
    }


def load_monai_bundle(card: ModelCard, device: torch.device) -> LoadedModel | None:
    """Registry loader for bundle cards (``network.name == "monai_bundle"``).

    Returns:
        The loaded model (segmentation: an :class:`AdaptedNetwork`; detection: a
        :class:`.bundle_detection.BundleDetector`), or ``None`` for other cards.

    Raises:
        InputError: the weights fail their SHA-256 or safety check, or do not fit.
    """
    if card.network.get("name") != BUNDLE_NETWORK:
        return None
    assert card.folder is not None, "cards of installed models know their folder"
    if card.task == "detection":
        detector = load_bundle_detector(card, device)
        return LoadedModel(card=card, network=detector.to(device).eval(), device=device)
    network = bundle_network(card, device)
    adapted = AdaptedNetwork(
        network,
        card.network["axcodes"],
        card.network["intensity_range"],
        card.network["roi_size"],
        card.network.get("overlap", 0.25),
    )
    return LoadedModel(card=card, network=adapted.to(device).eval(), device=device)


def bundle_network(card: ModelCard, device: torch.device) -> torch.nn.Module:
    """The bundle's raw network with its weights (TorchScript, or ``network_def`` + state_dict).

    Raises:
        InputError: unsafe or mismatched weights, or a config item that is not allowed.
    """
    assert card.folder is not None
    weights = card.folder / card.weights["file"]
    if card.weights.get("format") == "torchscript":
        return load_torchscript(weights, card.weights["sha256"], device)
    state = load_state_dict(weights, card.weights["sha256"])
    config_path = card.folder / card.network["config"]
    network = instantiate(read_config(config_path), "network_def", str(config_path))
    try:
        network.load_state_dict(state)
    except RuntimeError as error:
        first_line = str(error).strip().splitlines()[0]
        raise InputError(
            f"{weights}: weights do not fit the bundle's network_def ({first_line}); "
            "is this the bundle's own model.pt?"
        ) from None
    return network


def _network_target(config: dict[str, Any], source: str) -> str:
    definition = config["network_def"]
    target = definition.get("_target_") if isinstance(definition, dict) else None
    return target_module(target) if isinstance(target, str) else ""


def _preprocessing(config: dict[str, Any], source: str) -> list[dict[str, Any]]:
    preprocessing = config.get("preprocessing", {})
    transforms = preprocessing.get("transforms", []) if isinstance(preprocessing, dict) else []
    transforms = resolve_plain(config, transforms, source) if isinstance(transforms, str) else transforms
    return [t for t in transforms if isinstance(t, dict)]


def _transform(transforms: list[dict[str, Any]], name: str) -> dict[str, Any] | None:
    for transform in transforms:
        if str(transform.get("_target_", "")).split(".")[-1] == name:
            return transform
    return None


def _transform_setting(
    config: dict[str, Any], transforms: list[dict[str, Any]], name: str, key: str, source: str
) -> Any:
    transform = _transform(transforms, name)
    return (
        None if transform is None or key not in transform else resolve_plain(config, transform[key], source)
    )


def _patch(
    config: dict[str, Any], metadata: dict[str, Any], task: str, source: str
) -> tuple[list[int], float]:
    """The patch size (network axis order) and overlap of the bundle's sliding window."""
    if task == "detection":
        window = detector_settings(config, source)["sliding_window"]
        if window.get("roi_size"):
            return [int(s) for s in window["roi_size"]], float(window.get("overlap", 0.25))
    inferer = config.get("inferer")
    if isinstance(inferer, dict) and "roi_size" in inferer:
        return [int(s) for s in resolve_plain(config, inferer["roi_size"], source)], float(
            resolve_plain(config, inferer.get("overlap", 0.25), source)
        )
    shape = (
        metadata.get("network_data_format", {}).get("inputs", {}).get("image", {}).get("spatial_shape", [])
    )
    if len(shape) == 3 and all(isinstance(s, int) for s in shape):
        return [int(s) for s in shape], 0.25
    raise InputError(
        f"{source}: no patch size found (inferer roi_size or metadata spatial_shape); "
        "add one to the bundle config"
    )


def _class_names(metadata: dict[str, Any], task: str) -> list[str]:
    """Output class names by channel, background first, spaces for underscores."""
    pred = metadata.get("network_data_format", {}).get("outputs", {}).get("pred", {})
    channel_def = pred.get("channel_def")
    if channel_def:
        count = max(int(k) for k in channel_def) + 1
        names = [str(channel_def.get(str(i), f"class {i}")).replace("_", " ").strip() for i in range(count)]
        names[0] = "background"
        return names
    if task == "detection":
        described = f"{metadata.get('name', '')} {metadata.get('task', '')}".lower()
        return ["background", "lung nodule" if "nodule" in described else "finding"]
    count = int(pred.get("num_channels", 0))
    if count < 2:
        raise InputError(
            "bundle metadata names no output channels (network_data_format.outputs.pred.channel_def)"
        )
    return ["background"] + [f"class {i}" for i in range(1, count)]


def _label(value: int, name: str) -> dict[str, Any]:
    terminology = terminology_for(name) or {
        "category": ANATOMICAL_STRUCTURE
        if "lesion" not in name and "tumor" not in name
        else coded("49755003", "Morphologically Altered Structure"),
        "type": coded(
            re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-").upper()[:16] or f"CLASS-{value}",
            name,
            LOCAL_SCHEME,
        ),
    }
    hue = (value * 0.618033988749895) % 1.0
    color = [int(round(255 * c)) for c in colorsys.hsv_to_rgb(hue, 0.65, 0.95)]
    return {"value": value, "name": name, "color": color, "terminology": terminology}
