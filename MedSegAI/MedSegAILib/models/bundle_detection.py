"""MONAI RetinaNet detection bundles (the ``lung_nodule_ct_detection`` structure).

The bundle's ``network_def`` (a ``RetinaNet``) and ``anchor_generator`` are built from the
vetted config; the detector's settings come from ``detector`` and from the literal
arguments of the ``detector_ops`` calls (``set_box_selector_parameters``,
``set_sliding_window_inferer``), which are parsed, never run.

:func:`run_detection_bundle` prepares the CT as the bundle expects (canonical orientation,
the bundle spacing, its HU window and axis order), runs MONAI's ``RetinaNetDetector`` and
returns boxes and scores in patient coordinates (LPS, mm). :func:`detect_with_bundle`
turns them into the detection engine's :class:`~MedSegAILib.detection.detector.DetectionResult`
(each finding's mask is the ellipsoid inscribed in its box, on the input grid), so
``detect`` writes the same ``findings.json`` and ``nodules.nii.gz`` as for our own detector.

MONAI's RetinaNet feature extractor imports two helpers from torchvision. When torchvision
cannot be imported (the CPU-only torch here has no matching torchvision build),
:func:`ensure_torchvision_helpers` supplies equivalents: a layer-output collector and the
trainable-layer count check. They change no computation.
"""

from __future__ import annotations

import ast
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np
import SimpleITK as sitk
import torch
from torch import nn

from ..errors import InputError
from ..io.volume import Volume
from ..progress import CancelToken, ProgressCallback, check_cancelled, no_progress
from .adapter import axes_for, to_network_layout
from .bundle_config import _REF, instantiate, read_config, resolve_plain
from .card import ModelCard
from .normalization import normalize_intensity
from .weights import load_state_dict

AIR_HU = -1024.0
DETECTOR_OPS = ("set_box_selector_parameters", "set_sliding_window_inferer")
BOX_SELECTOR_DEFAULTS = {"score_thresh": 0.05, "topk_candidates_per_level": 1000, "nms_thresh": 0.5, "detections_per_img": 300}


@dataclass(frozen=True)
class DetectedBox:
    """One detection in patient coordinates (LPS, mm)."""

    bbox_min: tuple[float, float, float]
    bbox_max: tuple[float, float, float]
    score: float
    label: int

    @property
    def center(self) -> tuple[float, float, float]:
        return tuple((a + b) / 2.0 for a, b in zip(self.bbox_min, self.bbox_max))  # type: ignore[return-value]


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


def _trainable_layers(is_trained: bool, trainable_layers: Optional[int], max_value: int, default_value: int) -> int:
    """How many backbone layers train: the given count, else all (untrained) or the default."""
    if trainable_layers is None:
        trainable_layers = default_value if is_trained else max_value
    if not 0 <= trainable_layers <= max_value:
        raise ValueError(f"trainable layers must be in [0, {max_value}], got {trainable_layers}")
    return trainable_layers


def ensure_torchvision_helpers() -> None:
    """Give MONAI's RetinaNet feature extractor its torchvision helpers when torchvision is absent."""
    try:
        import torchvision  # noqa: F401

        return
    except Exception:  # noqa: BLE001 - absent, or present but unloadable (CUDA build on a CPU torch)
        pass
    from types import SimpleNamespace

    import monai.apps.detection.networks.retinanet_network as retinanet_network
    import monai.networks.blocks.backbone_fpn_utils as backbone_fpn_utils

    backbone_fpn_utils.torchvision_models = SimpleNamespace(_utils=SimpleNamespace(IntermediateLayerGetter=_LayerOutputs))
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


def load_bundle_detector(card: ModelCard, device: torch.device) -> "BundleDetector":
    """Build the RetinaNet detector of a detection bundle card, with its weights.

    Raises:
        InputError: weights refused (hash, unsafe pickle, mismatch) or config not allowed.
    """
    assert card.folder is not None
    if card.weights.get("format") == "torchscript":
        raise InputError(f"{card.folder}: detection bundles need models/model.pt (a state_dict); TorchScript detectors are not supported")
    ensure_torchvision_helpers()
    from monai.apps.detection.networks.retinanet_detector import RetinaNetDetector

    config_path = card.folder / card.network["config"]
    config = read_config(config_path)
    state = load_state_dict(card.folder / card.weights["file"], card.weights["sha256"])
    network = instantiate(config, "network_def", str(config_path))
    try:
        network.load_state_dict(state)
    except RuntimeError as error:
        first_line = str(error).strip().splitlines()[0]
        raise InputError(f"{card.folder / card.weights['file']}: weights do not fit the bundle's RetinaNet ({first_line})") from None
    anchors = instantiate(config, "anchor_generator", str(config_path))
    settings = card.network["detector"]
    detector = RetinaNetDetector(
        network=network, anchor_generator=anchors, spatial_dims=settings["spatial_dims"],
        num_classes=settings["num_classes"], size_divisible=settings["size_divisible"],
    )
    detector.set_box_selector_parameters(**settings["box_selector"])
    window = settings["sliding_window"]
    detector.set_sliding_window_inferer(
        roi_size=card.network["roi_size"], overlap=float(window.get("overlap", card.network.get("overlap", 0.25))),
        sw_batch_size=1, mode="constant", device=device,
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


def run_detection_bundle(
    volume: Volume,
    detector: BundleDetector,
    device: torch.device | str = "cpu",
    *,
    progress: ProgressCallback = no_progress,
    cancel: Optional[CancelToken] = None,
    timings: Optional[dict[str, float]] = None,
) -> list[DetectedBox]:
    """Run a RetinaNet bundle on a CT volume.

    Args:
        volume: the CT in HU, any orientation and spacing.
        detector: from :func:`load_bundle_detector` (or ``load_model(...).network``).
        device: where the detector's weights are.
        progress: ``(fraction, message)`` callback.
        cancel: checked before the network runs.
        timings: if given, receives seconds for ``preprocess``, ``inference`` and ``postprocess``.

    Returns:
        Boxes with scores, in LPS millimetres, highest score first.
    """
    timings = {} if timings is None else timings
    card = detector.card
    started = time.perf_counter()
    progress(0.0, "detection bundle: resampling")
    grid = Volume.from_sitk(_resample(volume, card.spacing))
    normalized = normalize_intensity(grid.array, card.input["normalization"])
    axcodes, intensity = card.network["axcodes"], card.network["intensity_range"]
    tensor = to_network_layout(torch.from_numpy(np.ascontiguousarray(normalized))[None, None], axcodes, intensity)[0]
    check_cancelled(cancel)
    timings["preprocess"] = time.perf_counter() - started
    progress(0.1, "detection bundle: running RetinaNet")
    started = time.perf_counter()
    with torch.inference_mode():
        output = detector([tensor.to(device)])[0]
    timings["inference"] = time.perf_counter() - started
    started = time.perf_counter()
    progress(0.9, "detection bundle: boxes to patient coordinates")
    boxes = output[detector.detector.target_box_key].detach().cpu().double().numpy()
    scores = output[detector.detector.pred_score_key].detach().cpu().numpy()
    labels = output[detector.detector.target_label_key].detach().cpu().numpy()
    results = [
        DetectedBox(*_box_to_lps(box, tensor.shape[1:], axcodes, grid), float(score), int(label) + 1)
        for box, score, label in zip(boxes, scores, labels)
    ]
    results.sort(key=lambda found: -found.score)
    timings["postprocess"] = time.perf_counter() - started
    progress(1.0, f"detection bundle: {len(results)} box(es)")
    return results


def detect_with_bundle(
    volume: Volume,
    detector: BundleDetector,
    device: torch.device | str = "cpu",
    *,
    threshold: float,
    progress: ProgressCallback = no_progress,
    cancel: Optional[CancelToken] = None,
    timings: Optional[dict[str, float]] = None,
):
    """Findings from a RetinaNet bundle, as the detection engine reports them.

    Each box with ``score >= threshold`` becomes a finding whose mask is the ellipsoid
    inscribed in the box, on the input grid; it is measured like any other finding.

    Args:
        volume: the CT in HU.
        detector: the loaded bundle detector.
        device: where it runs.
        threshold: the score cut-off.
        progress: ``(fraction, message)`` callback.
        cancel: checked between steps.
        timings: if given, receives seconds per stage (see :func:`run_detection_bundle`).

    Returns:
        A :class:`~MedSegAILib.detection.detector.DetectionResult` (findings sorted by
        score, numbered from 1, and the label map on the input grid).
    """
    from ..detection.detector import DetectionResult, Finding
    from ..detection.measure import measure_component

    boxes = run_detection_bundle(volume, detector, device, progress=progress, cancel=cancel, timings=timings)
    started = time.perf_counter()
    findings: list[Finding] = []
    for box in boxes:
        if box.score < threshold:
            continue
        slices, mask = ellipsoid_mask(box, volume)
        measurement = measure_component(mask, volume.crop(slices))
        findings.append(Finding(len(findings) + 1, box.score, measurement, None, slices, mask))
    labels = np.zeros(volume.array.shape, dtype=np.uint16 if len(findings) > 255 else np.uint8)
    for finding in findings:
        region = labels[finding.mask_slices]
        region[finding.mask & (region == 0)] = finding.id
    if timings is not None:
        timings["postprocess"] += time.perf_counter() - started
    return DetectionResult(findings, labels, threshold, f"RetinaNet bundle {detector.card.name}", len(boxes))


def ellipsoid_mask(box: DetectedBox, volume: Volume) -> tuple[tuple[slice, slice, slice], np.ndarray]:
    """The input-grid voxels inside the ellipsoid inscribed in ``box`` (at least the centre voxel).

    Returns:
        ``(slices, mask)``: the ``[k, j, i]`` block of the volume and the boolean mask in it.
    """
    low, high = np.array(box.bbox_min), np.array(box.bbox_max)
    corners = np.array([[x, y, z] for x in (low[0], high[0]) for y in (low[1], high[1]) for z in (low[2], high[2])])
    ijk = volume.lps_to_ijk(corners)
    size = np.array(volume.shape_ijk)
    start = np.clip(np.floor(ijk.min(axis=0)).astype(int), 0, size - 1)
    stop = np.clip(np.ceil(ijk.max(axis=0)).astype(int) + 1, start + 1, size)
    i, j, k = np.meshgrid(*(np.arange(a, b) for a, b in zip(start, stop)), indexing="ij")
    points = volume.ijk_to_lps(np.stack([i, j, k], axis=-1).reshape(-1, 3))
    radii = np.maximum((high - low) / 2.0, 1e-6)
    inside = (((points - (low + high) / 2.0) / radii) ** 2).sum(axis=1) <= 1.0
    mask = inside.reshape(i.shape).transpose(2, 1, 0)  # (i, j, k) -> [k, j, i]
    if not mask.any():
        centre = np.clip(np.round(volume.lps_to_ijk(np.array(box.center))).astype(int), start, stop - 1) - start
        mask[centre[2], centre[1], centre[0]] = True
    slices = tuple(slice(int(a), int(b)) for a, b in zip(start[::-1], stop[::-1]))
    return slices, mask  # type: ignore[return-value]


def _resample(volume: Volume, spacing: tuple[float, float, float]) -> sitk.Image:
    from ..inference.resample import resample_to_spacing

    return resample_to_spacing(volume.to_sitk(), spacing, sitk.sitkLinear, AIR_HU)


def _box_to_lps(box: np.ndarray, shape: tuple[int, ...], axcodes: str, grid: Volume) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """A ``xyzxyz`` box in the network's voxel coordinates -> LPS min/max corners.

    Coordinates are continuous voxel indices (voxel centres at integers), as MONAI's
    ``AffineBoxToWorldCoordinated`` treats them; boxes are clipped to the image first.
    """
    order, flips = axes_for(axcodes)
    low_kji, high_kji = [0.0] * 3, [0.0] * 3
    for target in range(3):
        low = min(max(float(box[target]), 0.0), shape[target] - 1.0)
        high = min(max(float(box[target + 3]), 0.0), shape[target] - 1.0)
        if target in flips:
            low, high = shape[target] - 1 - high, shape[target] - 1 - low
        low_kji[order[target]], high_kji[order[target]] = low, high
    corners = grid.ijk_to_lps(np.array([low_kji[::-1], high_kji[::-1]]))
    return tuple(corners.min(axis=0).tolist()), tuple(corners.max(axis=0).tolist())


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
    if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute) and call.func.attr in DETECTOR_OPS):
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
                raise InputError(f"{source}: {text!r}: argument {keyword.arg!r} must be a literal or an @reference") from None
    return call.func.attr, arguments
