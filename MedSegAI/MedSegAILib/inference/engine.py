"""The segmentation engine: one call from a CT volume to a label map on its own grid.

:func:`segment_volume` runs one forward pass and returns everything later stages need,
so nodule detection, Grad-CAM and Monte-Carlo uncertainty never run the network again:

- ``labels``: the output label map on exactly the input grid (``Volume``, uint8), the lung
  and airway borders refined on that grid (:mod:`.border_refinement`);
- ``model_grid``: the cropped, canonical LPS grid at model spacing, holding the
  resampled CT in HU; its geometry (``ijk_to_lps``) maps model-grid voxels to patient
  coordinates, and :meth:`SegmentationResult.to_input_grid` maps any model-grid map onto
  the input grid;
- ``model_labels``: the cleaned output label map on ``model_grid`` (borders not refined);
- ``probabilities``: the softmax, float16 ``(classes, k, j, i)`` on ``model_grid``, in the
  order of ``class_names`` (the card's ``network.output_classes``);
- ``features`` (with ``keep_features=True``): the decoder features
  ``network.features(x)``, float16 ``(channels, k, j, i)`` on ``model_grid``. The class
  logits are ``network.head(features)``: sampling the dropout head on them gives
  Monte-Carlo uncertainty, and differentiating the head's class score with respect to
  them gives Grad-CAM at the finest decoder layer (``decoder.0``);
- ``timings``: seconds per stage (``preprocess``, ``inference``, ``postprocess``; the border
  refinement counts in ``postprocess``).
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field

import numpy as np
import SimpleITK as sitk

from ..errors import MedSegAIError
from ..io.volume import Volume
from ..models.loaded import LoadedModel
from ..progress import CancelToken, ProgressCallback, check_cancelled, no_progress, sub_progress
from .border_refinement import band_radius, refine_label_borders, refined_label_values
from .device import DEFAULT_CPU_THREADS, cpu_threads
from .postprocess import postprocess
from .preprocess import prepare_input
from .resample import resample_like
from .sliding_window import DEFAULT_MARGIN, DEFAULT_MAX_TILE_VOXELS, predict_tiled

PREPROCESS_END = 0.1
INFERENCE_END = 0.9


@dataclass
class SegmentationResult:
    """The outputs of one forward pass (see the module docstring)."""

    labels: Volume
    model_grid: Volume
    model_labels: np.ndarray
    probabilities: np.ndarray
    class_names: tuple[str, ...]
    features: np.ndarray | None = None
    timings: dict[str, float] = field(default_factory=dict)
    windows: int = 0

    def to_input_grid(
        self, values: np.ndarray, linear: bool = True, default_value: float = 0.0
    ) -> np.ndarray:
        """Resample a ``[k, j, i]`` map on ``model_grid`` onto the input grid.

        Args:
            values: the map, shaped like ``model_grid.array``.
            linear: linear interpolation (float maps) or nearest neighbour (labels).
            default_value: the value outside the model grid's crop.

        Returns:
            The map on the input grid, float32 when ``linear`` else ``values``'s type.
        """
        values = np.asarray(values, dtype=np.float32) if linear else np.asarray(values)
        image = self.model_grid.with_array(values).to_sitk()
        interpolator = sitk.sitkLinear if linear else sitk.sitkNearestNeighbor
        return sitk.GetArrayFromImage(resample_like(image, self.labels, interpolator, default_value))


def segment_volume(
    volume: Volume,
    model: LoadedModel,
    *,
    fast: bool = False,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
    keep_features: bool = False,
    threads: int = DEFAULT_CPU_THREADS,
    max_tile_voxels: int = DEFAULT_MAX_TILE_VOXELS,
    margin: int = DEFAULT_MARGIN,
    refine_borders: bool = True,
) -> SegmentationResult:
    """Segment ``volume`` with ``model``.

    Args:
        volume: a CT in HU, any orientation and spacing.
        model: from :func:`~MedSegAILib.models.registry.load_model`.
        fast: run at the card's ``input.fast_spacing`` (coarser, quicker).
        progress: ``(fraction, message)`` callback; fractions never decrease.
        cancel: checked between stages and between windows.
        keep_features: keep the decoder features (needs ``features()``/``head()``).
        threads: torch CPU threads while running on the CPU.
        max_tile_voxels: the most voxels in one sliding-window tile (memory per window).
        margin: the least context (voxels) around each kept voxel of a tile.
        refine_borders: move the lung and airway borders onto the image on the input grid
            (:func:`~.border_refinement.refine_label_borders`); ``False`` keeps the
            nearest-neighbour labels from the model grid.

    Returns:
        The :class:`SegmentationResult`.

    Raises:
        InputError: the volume is too small, or the card asks for what the model lacks.
        MedSegAIError: ``keep_features`` for a network without ``features()``/``head()``.
        Cancelled: ``cancel`` was set.
    """
    progress = progress or no_progress
    card, network = model.card, model.network
    divisor = int(getattr(network, "divisor", 1))
    if keep_features and not (hasattr(network, "features") and hasattr(network, "head")):
        raise MedSegAIError(
            f"model {card.name!r} does not split into features() and head(), so its decoder features "
            "cannot be kept (uncertainty and Grad-CAM need them); use a MedSegAI network"
        )
    timings: dict[str, float] = {}

    check_cancelled(cancel)
    progress(0.0, "preprocess: resampling to the model grid")
    started = time.perf_counter()
    prepared = prepare_input(volume, card, divisor=divisor, fast=fast)
    timings["preprocess"] = time.perf_counter() - started
    progress(PREPROCESS_END, "preprocess: done")

    check_cancelled(cancel)
    started = time.perf_counter()
    threads_context = cpu_threads(threads) if model.device.type == "cpu" else contextlib.nullcontext()
    with threads_context:
        tiled = predict_tiled(
            network,
            prepared.network_input,
            prepared.model_grid.array.shape,
            model.device,
            divisor=divisor,
            max_tile_voxels=max_tile_voxels,
            margin=margin,
            keep_features=keep_features,
            progress=sub_progress(progress, PREPROCESS_END, INFERENCE_END),
            cancel=cancel,
        )
    timings["inference"] = time.perf_counter() - started

    check_cancelled(cancel)
    progress(INFERENCE_END, "postprocess: cleaning up segments")
    started = time.perf_counter()
    model_labels = postprocess(tiled.probabilities, prepared.model_grid, card, prepared.midline_x)
    labels_image = resample_like(
        prepared.model_grid.with_array(model_labels).to_sitk(), volume, sitk.sitkNearestNeighbor, 0
    )
    labels = Volume.from_sitk(labels_image, metadata=dict(volume.metadata))
    refined = refined_label_values(card)
    if refine_borders and refined:
        radius = band_radius(volume.spacing, prepared.model_grid.spacing)
        refine_label_borders(labels.array, volume.array, refined, radius)
    timings["postprocess"] = time.perf_counter() - started
    progress(1.0, "segmentation done")
    class_names = tuple(str(name) for name in card.network.get("output_classes", [])) or tuple(
        ["background"] + [label.name for label in card.labels]
    )
    return SegmentationResult(
        labels=labels,
        model_grid=prepared.model_grid,
        model_labels=model_labels,
        probabilities=tiled.probabilities,
        class_names=class_names,
        features=tiled.features,
        timings=timings,
        windows=tiled.windows,
    )
