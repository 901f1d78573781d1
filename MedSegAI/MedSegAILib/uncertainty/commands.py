"""What `segment --uncertainty N` and `detect --uncertainty N` add: checks and outputs."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any, Optional, Sequence

import numpy as np

from ..errors import InputError
from ..explain.storage import quantised_for_storage
from ..inference.engine import SegmentationResult
from ..io import write_float_map
from ..io.atomic import write_json
from ..io.output_dir import OutputDir
from ..io.volume import Volume
from ..models.registry import LoadedModel
from ..progress import ProgressCallback, no_progress
from .head_sampling import head_sampler
from .input_grid import maps_on_input_grid
from .mc_dropout import AgreementRegion, UncertaintyResult, estimate_uncertainty
from .summary import findings_uncertainty, segment_regions, uncertainty_json


def check_samples(samples: int) -> None:
    """``--uncertainty N`` must be 0 (off) or at least 2.

    Raises:
        InputError: it is not.
    """
    if samples < 0 or samples == 1:
        raise InputError(f"--uncertainty {samples}: give 0 (off) or a number of samples of at least 2 (e.g. 8)")


def check_model_supports(model: LoadedModel) -> None:
    """The model must have a dropout head to sample.

    Raises:
        InputError: it has none.
    """
    try:
        head_sampler(model.network, 2, 0, model.device)
    except ValueError as error:
        raise InputError(f"--uncertainty: model {model.card.name!r} cannot give Monte-Carlo uncertainty ({error}); run without --uncertainty") from None


def write_segment_uncertainty(out: OutputDir, result: SegmentationResult, model: LoadedModel, volume: Volume, samples: int,
                              threads: int, progress: ProgressCallback = no_progress) -> UncertaintyResult:
    """Sample, then write ``uncertainty_entropy.nii.gz``, ``uncertainty_mutual_information.nii.gz``
    (float32, input grid, stored at :data:`~MedSegAILib.explain.storage.STORAGE_STEP`) and
    ``uncertainty.json``. The two maps are resampled together and written in parallel."""
    regions = segment_regions(result, model.card)
    uncertainty = estimate_uncertainty(result, model, samples, regions=regions, threads=threads, progress=progress)
    maps = maps_on_input_grid(result, [uncertainty.entropy, uncertainty.mutual_information], uncertainty.sampled_box)
    names = ("uncertainty_entropy.nii.gz", "uncertainty_mutual_information.nii.gz")
    with ThreadPoolExecutor(max(1, min(threads, len(names)))) as pool:  # SimpleITK releases the GIL while it compresses
        written = [pool.submit(write_float_map, quantised_for_storage(values), volume, out.path(name)) for values, name in zip(maps, names)]
        write_json(out.path("uncertainty.json"), uncertainty_json(uncertainty, result, model.card, regions))
        for future in written:
            future.result()
    return uncertainty


def finding_uncertainties(result: SegmentationResult, model: LoadedModel, finding_masks: Sequence[np.ndarray],
                          samples: int, threads: int, progress: ProgressCallback = no_progress) -> list[dict[str, Any]]:
    """Each finding's ``"uncertainty"`` (see :func:`~.summary.findings_uncertainty`), in id order."""
    nodule = [name.lower() for name in result.class_names].index("lung nodule")
    regions: dict[object, AgreementRegion] = {("finding", n): AgreementRegion(nodule, mask) for n, mask in enumerate(finding_masks, start=1)}
    uncertainty = estimate_uncertainty(result, model, samples, regions=regions, threads=threads, progress=progress)
    summaries = findings_uncertainty(uncertainty, finding_masks, float(np.prod(result.model_grid.spacing)))
    for summary in summaries:
        summary["samples"] = samples
    return summaries


def add_finding_uncertainty(findings_json: dict[str, Any], summaries: Optional[Sequence[dict[str, Any]]]) -> dict[str, Any]:
    """``findings.json`` with each finding's ``"uncertainty"`` (findings are in id order)."""
    if summaries is None:
        return findings_json
    by_id = {index: summary for index, summary in enumerate(summaries, start=1)}
    for finding in findings_json["findings"]:
        finding["uncertainty"] = by_id[int(finding["id"])]
    return findings_json
