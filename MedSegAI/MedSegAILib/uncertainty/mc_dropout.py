"""Monte-Carlo dropout uncertainty for a finished segmentation, without rerunning the network.

:func:`estimate_uncertainty` takes the :class:`~MedSegAILib.inference.engine.SegmentationResult`
of ``segment_volume(..., keep_features=True)`` and samples only the dropout head, N times,
on the kept decoder features (:mod:`.head_sampling`), chunk by chunk, and only where it
can matter:

- the *sampled box* is the bounding box of every segment (and of every region whose
  agreement is asked for, e.g. detection findings) plus :data:`BOX_MARGIN_VOXELS` (8 mm
  on the 2 mm model grid): the lungs, airway and nodules with the tissue around them. If
  the model labelled nothing, the box is the whole model grid;
- inside it, only voxels whose deterministic probability for their class is below
  :data:`SAMPLE_BELOW` are sampled.

Every other voxel is taken as certain: it keeps the deterministic class (in the mean
and in every sample) and gets 0 entropy, 0 mutual information and 0 variance. This is an
approximation, measured on the chest series (docs/explainability.md): sampled too, those
voxels would get a floor of Monte-Carlo entropy that this dropout head gives everywhere
(0.13 nats on average, at most 0.26 inside the box), none of them reaching the 0.5-nat
threshold of :mod:`.review`; outside the box the deterministic softmax is above 0.9 except
in air outside the body. Chunks are independent and run in parallel threads with one
torch thread each (chunks are small; intra-op threads cost more than they give there).
Everything is computed on the model grid, then resampled to the input grid
(:mod:`.input_grid`).

Agreement between samples: for each region (a segment, or a detection finding), the Dice
of each sample's class mask with the mean prediction's class mask, inside the region
grown by :data:`AGREEMENT_MARGIN_VOXELS` (so that a sample that grows or shrinks the
segment counts, and one that adds the class far away does not).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import torch
from scipy import ndimage

from ..inference.device import DEFAULT_CPU_THREADS, cpu_threads
from ..inference.engine import SegmentationResult
from ..models.loaded import LoadedModel
from ..progress import CancelToken, ProgressCallback, check_cancelled, no_progress
from .head_sampling import (
    DEFAULT_CHUNK_VOXELS,
    FactorisedDropoutHead,
    features_with_halo,
    head_sampler,
    iter_chunks,
)
from .maps import argmax, softmax, voxel_uncertainty

DEFAULT_SEED = 0
SAMPLE_BELOW = 0.999
BOX_MARGIN_VOXELS = 4
AGREEMENT_MARGIN_VOXELS = 2


@dataclass(frozen=True)
class AgreementRegion:
    """A region whose sample agreement is measured: the raw network class and its mask
    on the model grid."""

    raw_class: int
    mask: np.ndarray


@dataclass
class UncertaintyResult:
    """Monte-Carlo dropout maps on the model grid, and per-region sample agreement.

    Attributes:
        entropy: predictive entropy of the mean softmax (nats), float32 ``[k, j, i]``.
        mutual_information: BALD (nats), float32.
        variance: variance across samples of the predicted class's probability, float32.
        mean_probabilities: the mean softmax, float16 ``(K, k, j, i)`` (the deterministic
            softmax where nothing was sampled).
        sampled_box: the ``[k, j, i]`` slices inside which voxels were sampled.
        sampled_voxels: how many voxels were sampled (the maps are 0 everywhere else).
        agreement: per region key, the Dice of each sample with the mean prediction.
        samples: N.
        seed: the seed of the dropout masks.
        seconds: time taken.
    """

    entropy: np.ndarray
    mutual_information: np.ndarray
    variance: np.ndarray
    mean_probabilities: np.ndarray
    sampled_box: tuple[slice, slice, slice]
    sampled_voxels: int = 0
    agreement: dict[object, np.ndarray] = field(default_factory=dict)
    samples: int = 0
    seed: int = DEFAULT_SEED
    seconds: float = 0.0

    @property
    def sampled_fraction(self) -> float:
        """The fraction of the model grid that was sampled."""
        return self.sampled_voxels / self.entropy.size


def estimate_uncertainty(
    result: SegmentationResult,
    model: LoadedModel,
    samples: int,
    *,
    regions: Mapping[object, AgreementRegion] | None = None,
    seed: int = DEFAULT_SEED,
    temperature: float | None = None,
    sample_below: float = SAMPLE_BELOW,
    chunk_voxels: int = DEFAULT_CHUNK_VOXELS,
    threads: int = DEFAULT_CPU_THREADS,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> UncertaintyResult:
    """N-sample Monte-Carlo dropout uncertainty of ``result``.

    Args:
        result: from ``segment_volume(..., keep_features=True)`` with ``model``.
        model: the model that produced ``result`` (its network's head is sampled).
        samples: N, at least 2.
        regions: regions whose sample agreement (Dice) to measure, by key.
        seed: seeds the dropout masks (same seed, same maps).
        temperature: divide the logits by this before the softmax (calibration).
        sample_below: sample only the voxels whose deterministic probability for their
            class is below this (above 1: every voxel of the sampled box).
        chunk_voxels: voxels per chunk (memory: about 30 floats per voxel per sample).
        threads: chunks sampled in parallel on the CPU (each with one torch thread; one at a
            time for a head that is not factorisable).
        progress: ``(fraction, message)`` callback.
        cancel: checked between chunks.

    Returns:
        The maps on the model grid and the agreement per region.

    Raises:
        ValueError: ``samples < 2``, no kept features, or a network without a dropout head.
        Cancelled: ``cancel`` was set.
    """
    if samples < 2:
        raise ValueError(f"Monte-Carlo dropout needs at least 2 samples, got {samples}")
    if result.features is None:
        raise ValueError(
            "the segmentation kept no decoder features; run segment_volume(..., keep_features=True)"
        )
    progress = progress or no_progress
    started = time.perf_counter()
    device = model.device
    sampler = head_sampler(model.network, samples, seed, device)
    probabilities = result.probabilities
    grid = probabilities.shape[1:]
    box = sampled_box(result, regions)
    out = UncertaintyResult(
        entropy=np.zeros(grid, dtype=np.float32),
        mutual_information=np.zeros(grid, dtype=np.float32),
        variance=np.zeros(grid, dtype=np.float32),
        mean_probabilities=probabilities.copy(),
        sampled_box=box,
        samples=samples,
        seed=seed,
    )
    territories = {key: _territory(region.mask) for key, region in (regions or {}).items()}
    counts = {
        key: np.zeros((3, samples), dtype=np.int64) for key in territories
    }  # intersection, sample, reference

    def sample_chunk(
        chunk: tuple[slice, slice, slice],
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Fill ``out`` on ``chunk``; return its classes, sampled voxels and their votes."""
        check_cancelled(cancel)
        with torch.inference_mode():
            deterministic = torch.from_numpy(
                probabilities[(slice(None),) + chunk]
            ).float()  # torch converts float16 fast
            predicted = argmax(deterministic, 0)
            selected = deterministic.gather(0, predicted.long()[None])[0] < sample_below
            if not bool(selected.any()):
                return predicted, selected, None
            logits = sampler(
                features_with_halo(result.features, chunk, sampler.halo, device), selected.to(device)
            )
            if temperature is not None:
                logits = logits / temperature
            maps = voxel_uncertainty(softmax(logits.float(), dim=1))
            where = selected.numpy()
            for target, values in (
                (out.entropy, maps.entropy),
                (out.mutual_information, maps.mutual_information),
                (out.variance, maps.variance),
            ):
                target[chunk][where] = values.cpu().numpy()
            out.mean_probabilities[(slice(None),) + chunk][:, where] = maps.mean.cpu().numpy()
            flat = predicted.view(-1)
            flat[torch.from_numpy(np.flatnonzero(where))] = maps.predicted.cpu()
            return predicted, selected, maps.votes.cpu()

    chunks = list(iter_chunks(box, chunk_voxels))
    on_cpu = device.type == "cpu"
    # Small chunks: one torch thread per chunk and chunks in parallel beat intra-op threads (no barriers).
    # The batched sampler switches dropout on and reseeds the global generator: one chunk at a time.
    workers = max(1, threads) if on_cpu and isinstance(sampler, FactorisedDropoutHead) else 1
    with cpu_threads(1) if on_cpu else contextlib.nullcontext(), ThreadPoolExecutor(workers) as pool:
        for index, (chunk, (predicted, selected, votes)) in enumerate(
            zip(chunks, pool.map(sample_chunk, chunks))
        ):
            out.sampled_voxels += int(selected.sum())
            _count_agreement(votes, predicted, selected, chunk, regions or {}, territories, counts)
            progress(
                (index + 1) / len(chunks), f"uncertainty: chunk {index + 1}/{len(chunks)} ({samples} samples)"
            )
    for key, (intersection, sample_size, reference_size) in counts.items():
        total = sample_size + reference_size
        out.agreement[key] = np.where(total > 0, 2.0 * intersection / np.maximum(total, 1), 1.0)
    out.seconds = time.perf_counter() - started
    return out


def sampled_box(
    result: SegmentationResult,
    regions: Mapping[object, AgreementRegion] | None = None,
    margin: int = BOX_MARGIN_VOXELS,
) -> tuple[slice, slice, slice]:
    """The ``[k, j, i]`` box that is sampled: every segment and region, plus ``margin`` voxels;
    the whole model grid when there is none (the model found nothing: look everywhere)."""
    interesting = result.model_labels > 0
    for region in (regions or {}).values():
        interesting |= region.mask
    found = ndimage.find_objects(interesting.astype(np.uint8))
    if not found or found[0] is None:
        return tuple(slice(0, n) for n in interesting.shape)  # type: ignore[return-value]
    return tuple(
        slice(max(0, s.start - margin), min(n, s.stop + margin)) for s, n in zip(found[0], interesting.shape)
    )  # type: ignore[return-value]


def _territory(mask: np.ndarray) -> tuple[tuple[slice, slice, slice], np.ndarray] | None:
    """The region grown by :data:`AGREEMENT_MARGIN_VOXELS`, as (box, mask in the box)."""
    found = ndimage.find_objects(mask.astype(np.uint8))
    if not found or found[0] is None:
        return None
    m = AGREEMENT_MARGIN_VOXELS
    box = tuple(slice(max(0, s.start - m), min(n, s.stop + m)) for s, n in zip(found[0], mask.shape))
    grown = ndimage.binary_dilation(mask[box], structure=np.ones((3, 3, 3), bool), iterations=m)
    return box, grown  # type: ignore[return-value]


def _count_agreement(
    votes: torch.Tensor | None,
    predicted: torch.Tensor,
    selected: torch.Tensor,
    chunk: tuple[slice, slice, slice],
    regions: Mapping[object, AgreementRegion],
    territories: dict,
    counts: dict,
) -> None:
    """Add this chunk's per-sample intersections and sizes inside each region's territory.

    ``votes`` ``(N, S)``: the samples' classes at the ``S`` ``selected`` voxels (C order);
    every other voxel votes its ``predicted`` class in every sample.
    """
    order = None
    for key, territory in territories.items():
        if territory is None:
            continue
        box, grown = territory
        overlap = tuple(slice(max(a.start, b.start), min(a.stop, b.stop)) for a, b in zip(chunk, box))
        if any(part.stop <= part.start for part in overlap):
            continue
        in_chunk = tuple(slice(o.start - c.start, o.stop - c.start) for o, c in zip(overlap, chunk))
        in_box = tuple(slice(o.start - b.start, o.stop - b.start) for o, b in zip(overlap, box))
        inside = torch.from_numpy(np.ascontiguousarray(grown[in_box]))
        raw_class = regions[key].raw_class
        reference = (predicted[in_chunk] == raw_class) & inside
        sampled = selected[in_chunk] & inside
        fixed = int((reference & ~sampled).sum())  # these vote their predicted class in every sample
        intersection = np.full(counts[key].shape[1], fixed, dtype=np.int64)
        sample_size = intersection.copy()
        if votes is not None and bool(sampled.any()):
            if order is None:
                order = torch.full(selected.shape, -1, dtype=torch.long)
                order[selected] = torch.arange(votes.shape[1])
            in_class = votes[:, order[in_chunk][sampled]] == raw_class
            intersection += (in_class & reference[sampled]).sum(1).numpy()
            sample_size += in_class.sum(1).numpy()
        counts[key][0] += intersection
        counts[key][1] += sample_size
        counts[key][2] += int(reference.sum())
