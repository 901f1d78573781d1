"""Grad-CAM of a detection finding: where the nodule classifier looked when it scored it.

A finding's score is the patch classifier's logit (:mod:`~MedSegAILib.detection.patch_classifier`)
for the ``PATCH_VOXELS``³ HU patch sampled at ``PATCH_SPACING_MM`` along the LPS axes around
the candidate the finding grew from, plus a constant for the candidate's place in the blob
ranking, through Platt scaling (:mod:`~MedSegAILib.detection.nodule_scorer`). Its class
activation map explains the logit, the only part that depends on the image inside the patch:

- the patch is extracted from the model-grid CT with :func:`extract_patches`, around the
  candidate's centre (the patch that was scored; the measured centre for a finding without one);
- the map is computed at a layer of the classifier (default :data:`DEFAULT_FINDING_LAYER`,
  12³ cells of 3 mm) by one of :data:`FINDING_CAM_METHODS`:

  - ``layercam`` (default; Jiang et al. 2021, "LayerCAM"): ``ReLU(sum_c ReLU(d logit / dA_c) * A_c)``,
    each cell weighted by its own positive gradient, which keeps the map sharp at layers finer
    than the last one;
  - ``gradcam`` (Selvaraju et al. 2017, as MONAI's ``monai.visualize.GradCAM``): channel
    weights = the spatial mean of ``d logit / dA``, map = ``ReLU(sum_c weight_c * A_c)``; it
    needs the coarse last block (``features.6``, 6 mm cells), since at finer layers the
    averaged gradients cancel;

  and trilinearly upsampled to the patch (24³ voxels of ``PATCH_SPACING_MM``);
- the patch map is a volume with identity direction, spacing ``PATCH_SPACING_MM`` and origin
  ``centre - 11.5 * PATCH_SPACING_MM`` on each LPS axis, resampled (linearly, 0 outside the patch) onto
  the input grid, over the block of input voxels it covers only;
- each finding's map is divided by its own maximum and the findings are combined by their
  voxel-wise maximum, so every finding shows whatever its score: the result is in [0, 1].
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk
import torch
from torch import nn
from torch.nn import functional

from ..detection.detector import Finding
from ..detection.patch_classifier import (
    PATCH_SPACING_MM,
    PATCH_VOXELS,
    NoduleClassifier,
    NoduleEnsemble,
    PatchNetwork,
    extract_patches,
    normalize,
)
from ..errors import InputError
from ..inference.resample import resample_like
from ..io.volume import Volume

DEFAULT_FINDING_LAYER = "features.3"
"""The classifier's second conv block (16 channels, 12³ cells of 3 mm), the last one before it pools
to 6 mm cells."""

FINDING_CAM_METHODS = ("layercam", "gradcam")
"""How channel activations are weighted (module docstring)."""

DEFAULT_FINDING_METHOD = "layercam"


@dataclass
class FindingCam:
    """One finding's Grad-CAM.

    Attributes:
        finding_id: the finding's id.
        center_lps: the patch centre (LPS mm).
        logit: the classifier's logit for the patch (the explained score, before calibration).
        patch_map: raw (unnormalised, non-negative) map ``[z, y, x]`` on the patch, ``PATCH_VOXELS``³.
    """

    finding_id: int
    center_lps: tuple[float, float, float]
    logit: float
    patch_map: np.ndarray


def finding_layers(network: PatchNetwork | None = None) -> list[str]:
    """The classifier layers Grad-CAM can explain: ``features`` and its sub-modules (spatial outputs);
    of an ensemble, those of each member."""
    network = network or NoduleClassifier()
    if isinstance(network, NoduleEnsemble):
        network = network.members[0]
    return [name for name, _ in network.named_modules() if name == "features" or name.startswith("features.")]


def check_finding_layer(layer: str, network: PatchNetwork | None = None) -> None:
    """Raises :class:`InputError` unless ``layer`` is one of :func:`finding_layers`."""
    layers = finding_layers(network)
    if layer not in layers:
        raise InputError(
            f"--gradcam-layer {layer}: the nodule classifier has no such layer with a spatial output; "
            f"use features or a module under it, e.g. features.3 (default {DEFAULT_FINDING_LAYER})"
        )


def patch_center(finding: Finding) -> tuple[float, float, float]:
    """The centre of the patch the classifier scored: the candidate's, else the measured centre."""
    center = finding.candidate.center_lps if finding.candidate is not None else finding.measurement.center
    return tuple(float(c) for c in center)  # type: ignore[return-value]


def patch_gradcam(
    network: PatchNetwork,
    patches: np.ndarray,
    layer: str = DEFAULT_FINDING_LAYER,
    method: str = DEFAULT_FINDING_METHOD,
) -> tuple[np.ndarray, np.ndarray]:
    """Class activation maps of the classifier's logit for HU patches.

    ``gradcam`` is what ``monai.visualize.GradCAM`` computes (tested equal), written out
    because importing MONAI takes seconds and this takes milliseconds. Runs on a copy of
    ``network`` in eval mode with in-place ReLUs made out-of-place (hooks never stay on the
    network, and any sub-module's output can be differentiated).

    Args:
        network: the nodule classifier. Of an ensemble, the members' maps and logits are averaged:
            its logit is their mean, so with ``layercam`` (non-negative terms) that is exactly
            the map over all members' channels; with ``gradcam`` it is the members' mean map.
        patches: HU patches ``(n, d, h, w)`` (:func:`extract_patches`).
        layer: a layer of :func:`finding_layers`.
        method: one of :data:`FINDING_CAM_METHODS`.

    Returns:
        ``(maps (n, d, h, w) float32 raw and non-negative, logits (n,))``.

    Raises:
        InputError: ``layer`` is not one of :func:`finding_layers`, or ``method`` is unknown.
    """
    check_finding_layer(layer, network)
    if method not in FINDING_CAM_METHODS:
        raise InputError(f"--gradcam-method {method}: use one of {', '.join(FINDING_CAM_METHODS)}")
    patches = np.asarray(patches)
    if len(patches) == 0:
        return np.zeros(patches.shape, dtype=np.float32), np.zeros(0)
    if isinstance(network, NoduleEnsemble):
        maps, logits = zip(*(patch_gradcam(member, patches, layer, method) for member in network.members))
        return np.mean(maps, axis=0).astype(np.float32), np.mean(logits, axis=0)
    explained = copy.deepcopy(network).eval()
    for module in explained.modules():
        if isinstance(module, nn.ReLU):
            module.inplace = False
    captured: list[torch.Tensor] = []
    hook = dict(explained.named_modules())[layer].register_forward_hook(
        lambda _module, _inputs, output: captured.append(output)
    )
    x = torch.from_numpy(normalize(patches))[:, None].to(next(network.parameters()).device)
    try:
        with torch.enable_grad():
            logits = explained(x)
            (gradient,) = torch.autograd.grad(
                logits.sum(), captured[0]
            )  # patches are independent in eval mode
    finally:
        hook.remove()
    weights = torch.relu(gradient) if method == "layercam" else gradient.mean(dim=(2, 3, 4), keepdim=True)
    cam = torch.relu((weights * captured[0]).sum(dim=1, keepdim=True))
    cam = functional.interpolate(cam, size=patches.shape[1:], mode="trilinear", align_corners=False)
    return cam[:, 0].detach().cpu().numpy().astype(np.float32), logits.detach().cpu().numpy().astype(
        np.float64
    )


def patch_volume(center_lps: Sequence[float], values: np.ndarray) -> Volume:
    """A ``PATCH_VOXELS``³ patch map as a volume at its place in patient space
    (:func:`extract_patches`'s geometry)."""
    half = (PATCH_VOXELS - 1) / 2.0 * PATCH_SPACING_MM
    origin = tuple(float(c) - half for c in center_lps)
    return Volume(np.asarray(values, dtype=np.float32), (PATCH_SPACING_MM,) * 3, origin, np.eye(3))


def patch_on_grid(patch: Volume, reference: Volume) -> tuple[tuple[slice, slice, slice], np.ndarray]:
    """A patch map resampled linearly onto the block of ``reference``'s voxels it covers
    (0 outside the patch).

    Returns:
        ``(block as [k, j, i] slices of reference.array, values on the block)``; an empty
        block when the patch lies outside ``reference``.
    """
    size = np.array(patch.shape_ijk, dtype=float)
    corners = np.array(
        [
            [i, j, k]
            for i in (-0.5, size[0] - 0.5)
            for j in (-0.5, size[1] - 0.5)
            for k in (-0.5, size[2] - 0.5)
        ]
    )
    ijk = reference.lps_to_ijk(patch.ijk_to_lps(corners))
    low = np.maximum(np.floor(ijk.min(axis=0)).astype(int), 0)
    high = np.minimum(np.ceil(ijk.max(axis=0)).astype(int) + 1, reference.shape_ijk)
    block = tuple(slice(int(lo), int(max(lo, hi))) for lo, hi in zip(low[::-1], high[::-1]))
    shape = tuple(s.stop - s.start for s in block)
    if 0 in shape:
        return block, np.zeros(shape, dtype=np.float32)  # type: ignore[return-value]
    target = Volume(
        np.empty(shape, dtype=np.uint8),
        reference.spacing,
        tuple(reference.ijk_to_lps(low.astype(float))),
        reference.direction,
    )
    values = sitk.GetArrayFromImage(resample_like(patch.to_sitk(), target, sitk.sitkLinear, 0.0))
    return block, values.astype(np.float32, copy=False)  # type: ignore[return-value]


def findings_gradcam(
    grid: Volume,
    findings: Sequence[Finding],
    network: PatchNetwork,
    reference: Volume,
    layer: str = DEFAULT_FINDING_LAYER,
    method: str = DEFAULT_FINDING_METHOD,
) -> tuple[np.ndarray, list[FindingCam]]:
    """One class activation map for all findings, on ``reference``'s grid, in [0, 1].

    Args:
        grid: the CT in HU the findings were scored on (``SegmentationResult.model_grid``).
        findings: the detection's findings.
        network: the nodule classifier that scored them (``NoduleScorer.network``).
        reference: the input CT (the grid of the output map).
        layer: a layer of :func:`finding_layers`.
        method: one of :data:`FINDING_CAM_METHODS`.

    Returns:
        ``(map [k, j, i] float32 on reference's grid, each finding's raw patch map)``; all
        zeros without findings.

    Raises:
        InputError: ``layer`` is not one of :func:`finding_layers`, or ``method`` is unknown.
    """
    centers = [patch_center(finding) for finding in findings]
    maps, logits = patch_gradcam(
        network, extract_patches(grid, np.array(centers).reshape(-1, 3)), layer, method
    )
    combined = np.zeros(reference.array.shape, dtype=np.float32)
    cams = []
    for finding, center, patch_map, logit in zip(findings, centers, maps, logits):
        block, values = patch_on_grid(patch_volume(center, patch_map), reference)
        peak = float(values.max()) if values.size else 0.0
        if peak > 0.0:
            np.maximum(combined[block], values / peak, out=combined[block])
        cams.append(FindingCam(finding.id, center, float(logit), patch_map))
    return combined, cams
