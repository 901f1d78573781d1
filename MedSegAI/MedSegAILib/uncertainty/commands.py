"""What `segment --uncertainty N` and `detect --uncertainty N` add: checks and outputs."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk

from ..detection.detector import DetectionResult
from ..detection.lesion_segment import lesion_label_value
from ..errors import InputError
from ..explain.storage import quantised_for_storage
from ..explain.targets import findings_on_model_grid, raw_class_by_label
from ..inference.engine import SegmentationResult
from ..io.atomic import atomic_path, write_json
from ..io.output_dir import OutputDir
from ..io.volume import Volume
from ..models.loaded import LoadedModel
from ..progress import ProgressCallback, no_progress
from .head_sampling import head_sampler
from .input_grid import InputGridMaps, maps_on_input_grid
from .mc_dropout import AgreementRegion, UncertaintyResult, estimate_uncertainty
from .summary import findings_uncertainty, segment_regions, uncertainty_json


def check_samples(samples: int) -> None:
    """``--uncertainty N`` must be 0 (off) or at least 2.

    Raises:
        InputError: it is not.
    """
    if samples < 0 or samples == 1:
        raise InputError(
            f"--uncertainty {samples}: give 0 (off) or a number of samples of at least 2 (e.g. 8)"
        )


def check_model_supports(model: LoadedModel) -> None:
    """The model must have a dropout head to sample.

    Raises:
        InputError: it has none.
    """
    try:
        head_sampler(model.network, 2, 0, model.device)
    except ValueError as error:
        raise InputError(
            f"--uncertainty: model {model.card.name!r} cannot give Monte-Carlo uncertainty ({error}); "
            "run without --uncertainty"
        ) from None


def write_segment_uncertainty(
    out: OutputDir,
    result: SegmentationResult,
    model: LoadedModel,
    volume: Volume,
    samples: int,
    threads: int,
    progress: ProgressCallback = no_progress,
    detection: DetectionResult | None = None,
) -> list[dict[str, Any]] | None:
    """Sample, then write ``uncertainty_entropy.nii.gz``, ``uncertainty_mutual_information.nii.gz``
    (float32, input grid, stored at :data:`~MedSegAILib.explain.storage.STORAGE_STEP`) and
    ``uncertainty.json``. The two maps are resampled together and written in parallel.

    With ``detection`` (the findings that form the ``lung nodule`` segment), that segment's region
    is the findings' outlines, each finding is also summarised (``uncertainty.json`` ``lesions``),
    and those summaries are returned in id order for ``findings.json``; else ``None``.
    """
    regions = segment_regions(result, model.card)
    finding_masks = _lesion_regions(result, model, detection, regions) if detection is not None else None
    uncertainty = estimate_uncertainty(
        result, model, samples, regions=regions, threads=threads, progress=progress
    )
    on_input = maps_on_input_grid(
        result, [uncertainty.entropy, uncertainty.mutual_information], uncertainty.sampled_box
    )
    names = ("uncertainty_entropy.nii.gz", "uncertainty_mutual_information.nii.gz")
    with ThreadPoolExecutor(
        max(1, min(threads, len(names)))
    ) as pool:  # SimpleITK releases the GIL while it compresses
        written = [
            pool.submit(_write_map, on_input, index, volume, out.path(name))
            for index, name in enumerate(names)
        ]
        document = uncertainty_json(uncertainty, result, model.card, regions)
        lesions = None
        if finding_masks is not None:
            lesions = _finding_summaries(uncertainty, result, finding_masks)
            document["lesions"] = [{"finding": n, **summary} for n, summary in enumerate(lesions, start=1)]
        write_json(out.path("uncertainty.json"), document)
        for future in written:
            future.result()
    return lesions


def _lesion_regions(
    result: SegmentationResult,
    model: LoadedModel,
    detection: DetectionResult,
    regions: dict[Any, AgreementRegion],
) -> list[np.ndarray] | None:
    """Add each finding's region, and make the ``lung nodule`` segment's region their union;
    returns the findings' masks on the model grid (``None`` if the model has no such segment)."""
    raw_of_value = raw_class_by_label(model.card)
    value = lesion_label_value(model.card)
    if value is None or value not in raw_of_value:
        return None
    centers = [finding.to_json()["center"] for finding in detection.findings]
    masks = findings_on_model_grid(result, detection.labels, centers) if centers else []
    union = np.zeros(result.model_labels.shape, dtype=bool)
    for number, mask in enumerate(masks, start=1):
        regions[("finding", number)] = AgreementRegion(raw_of_value[value], mask)
        union |= mask
    regions[value] = AgreementRegion(raw_of_value[value], union)
    return masks


def _write_map(maps: InputGridMaps, index: int, volume: Volume, path: Path) -> None:
    """Write map ``index`` on ``volume``'s grid (float32, gzip), atomically.

    Only its non-zero block is held as an array; SimpleITK pads it with zeros to the whole
    grid, so no full-size copy is made in numpy.
    """
    values = maps.blocks[index]
    if values.size == 0:
        image = sitk.Image([int(n) for n in volume.shape_ijk], sitk.sitkFloat32)
    else:
        before = [maps.region[2].start, maps.region[1].start, maps.region[0].start]
        after = [
            size - part.stop
            for size, part in zip(volume.shape_ijk, (maps.region[2], maps.region[1], maps.region[0]))
        ]
        image = sitk.ConstantPad(sitk.GetImageFromArray(quantised_for_storage(values)), before, after, 0.0)
    image.SetSpacing(volume.spacing)
    image.SetOrigin(volume.origin)
    image.SetDirection(tuple(volume.direction.flatten()))
    with atomic_path(path) as temporary:
        sitk.WriteImage(image, str(temporary), useCompression=True)


def finding_uncertainties(
    result: SegmentationResult,
    model: LoadedModel,
    finding_masks: Sequence[np.ndarray],
    samples: int,
    threads: int,
    progress: ProgressCallback = no_progress,
) -> list[dict[str, Any]]:
    """Each finding's ``"uncertainty"`` (see :func:`~.summary.findings_uncertainty`), in id order."""
    nodule = [name.lower() for name in result.class_names].index("lung nodule")
    regions: dict[object, AgreementRegion] = {
        ("finding", n): AgreementRegion(nodule, mask) for n, mask in enumerate(finding_masks, start=1)
    }
    uncertainty = estimate_uncertainty(
        result, model, samples, regions=regions, threads=threads, progress=progress
    )
    return _finding_summaries(uncertainty, result, finding_masks)


def _finding_summaries(
    uncertainty: UncertaintyResult, result: SegmentationResult, finding_masks: Sequence[np.ndarray]
) -> list[dict[str, Any]]:
    """Each finding's summary (:func:`~.summary.findings_uncertainty`) with its sample count."""
    summaries = findings_uncertainty(uncertainty, finding_masks, float(np.prod(result.model_grid.spacing)))
    for summary in summaries:
        summary["samples"] = uncertainty.samples
    return summaries


def add_finding_uncertainty(
    findings_json: dict[str, Any], summaries: Sequence[dict[str, Any]] | None
) -> dict[str, Any]:
    """``findings.json`` with each finding's ``"uncertainty"`` (findings are in id order)."""
    if summaries is None:
        return findings_json
    by_id = {index: summary for index, summary in enumerate(summaries, start=1)}
    for finding in findings_json["findings"]:
        finding["uncertainty"] = by_id[int(finding["id"])]
    return findings_json
