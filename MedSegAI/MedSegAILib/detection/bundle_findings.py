"""Findings from a MONAI RetinaNet detection bundle.

:func:`run_detection_bundle` prepares the CT as the bundle expects (canonical orientation,
the bundle spacing, its HU window and axis order), runs the loaded
:class:`~MedSegAILib.models.bundle_detection.BundleDetector` and returns boxes and scores in
patient coordinates (LPS, mm). :func:`detect_with_bundle` turns them into a
:class:`~.detector.DetectionResult` (each finding's mask is the ellipsoid inscribed in its
box, on the input grid, measured like any other finding), so ``detect`` writes the same
``findings.json`` and ``nodules.nii.gz`` as for our own detector.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk
import torch

from ..inference.resample import resample_to_spacing
from ..io.volume import Volume
from ..models.adapter import axes_for, to_network_layout
from ..models.bundle_detection import BundleDetector
from ..models.normalization import normalize_intensity
from ..progress import CancelToken, ProgressCallback, check_cancelled, no_progress
from .detector import DetectionResult, Finding
from .measure import measure_component

AIR_HU = -1024.0


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


def run_detection_bundle(
    volume: Volume,
    detector: BundleDetector,
    device: torch.device | str = "cpu",
    *,
    progress: ProgressCallback = no_progress,
    cancel: CancelToken | None = None,
    timings: dict[str, float] | None = None,
) -> list[DetectedBox]:
    """Run a RetinaNet bundle on a CT volume.

    Args:
        volume: the CT in HU, any orientation and spacing.
        detector: from :func:`~MedSegAILib.models.bundle_detection.load_bundle_detector`
            (or ``load_model(...).network``).
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
    tensor = to_network_layout(
        torch.from_numpy(np.ascontiguousarray(normalized))[None, None], axcodes, intensity
    )[0]
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
    cancel: CancelToken | None = None,
    timings: dict[str, float] | None = None,
) -> DetectionResult:
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
        A :class:`~.detector.DetectionResult` (findings sorted by score, numbered from 1,
        and the label map on the input grid).
    """
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
    corners = np.array(
        [[x, y, z] for x in (low[0], high[0]) for y in (low[1], high[1]) for z in (low[2], high[2])]
    )
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
        centre = (
            np.clip(np.round(volume.lps_to_ijk(np.array(box.center))).astype(int), start, stop - 1) - start
        )
        mask[centre[2], centre[1], centre[0]] = True
    slices = tuple(slice(int(a), int(b)) for a, b in zip(start[::-1], stop[::-1]))
    return slices, mask  # type: ignore[return-value]


def _resample(volume: Volume, spacing: tuple[float, float, float]) -> sitk.Image:
    return resample_to_spacing(volume.to_sitk(), spacing, sitk.sitkLinear, AIR_HU)


def _box_to_lps(
    box: np.ndarray, shape: tuple[int, ...], axcodes: str, grid: Volume
) -> tuple[tuple[float, ...], tuple[float, ...]]:
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
