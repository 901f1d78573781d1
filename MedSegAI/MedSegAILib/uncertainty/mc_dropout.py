"""Monte-Carlo dropout uncertainty for a finished segmentation, without rerunning the network.

:func:`estimate_uncertainty` takes the :class:`~MedSegAILib.inference.engine.SegmentationResult`
of ``segment_volume(..., keep_features=True)`` and samples only the dropout head, N times,
on the kept decoder features (:mod:`.head_sampling`), chunk by chunk, only inside the
sampled box: the bounding box of every voxel that the deterministic pass labelled as a
segment or gave less than :data:`CONFIDENT_PROBABILITY` for its class, plus
:data:`BOX_MARGIN_VOXELS`. That box holds the lungs and the body wall next to them; the
rest of the body crop (confident background) is not sampled: there the entropy map holds
the deterministic softmax's entropy (below 0.06 nats by construction) and the mutual
information is 0. Inside the box, voxels whose deterministic probability for their class
is at least :data:`SAMPLE_BELOW` (the interiors of confidently segmented organs) are taken
as certain: they keep the deterministic entropy (below 0.01 nats), zero mutual information
and the deterministic class in every sample, and only the head's convolution is computed
for them. Everything is computed on the model grid, then resampled to the input grid.

Agreement between samples: for each region (a segment, or a detection finding), the Dice
of each sample's class mask with the mean prediction's class mask, inside the region
grown by :data:`AGREEMENT_MARGIN_VOXELS` (so that a sample that grows or shrinks the
segment counts, and one that adds the class far away does not).
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from typing import Mapping, Optional

import numpy as np
import torch
from scipy import ndimage

from ..inference.device import DEFAULT_CPU_THREADS, cpu_threads
from ..inference.engine import SegmentationResult
from ..models.registry import LoadedModel
from ..progress import CancelToken, ProgressCallback, check_cancelled, no_progress
from .head_sampling import DEFAULT_CHUNK_VOXELS, head_sampler, iter_chunks, sample_probabilities
from .maps import entropy as entropy_along, voxel_uncertainty

DEFAULT_SEED = 0
CONFIDENT_PROBABILITY = 0.99
SAMPLE_BELOW = 0.999
BOX_MARGIN_VOXELS = 3
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
            softmax outside the sampled box).
        sampled_box: the ``[k, j, i]`` slices that were sampled (``None``: nothing to sample).
        agreement: per region key, the Dice of each sample with the mean prediction.
        samples: N.
        seed: the seed of the dropout masks.
        seconds: time taken.
    """

    entropy: np.ndarray
    mutual_information: np.ndarray
    variance: np.ndarray
    mean_probabilities: np.ndarray
    sampled_box: Optional[tuple[slice, slice, slice]]
    agreement: dict[object, np.ndarray] = field(default_factory=dict)
    samples: int = 0
    seed: int = DEFAULT_SEED
    seconds: float = 0.0

    @property
    def sampled_fraction(self) -> float:
        """The fraction of the model grid inside the sampled box."""
        if self.sampled_box is None:
            return 0.0
        return float(np.prod([s.stop - s.start for s in self.sampled_box]) / self.entropy.size)


def estimate_uncertainty(
    result: SegmentationResult,
    model: LoadedModel,
    samples: int,
    *,
    regions: Optional[Mapping[object, AgreementRegion]] = None,
    seed: int = DEFAULT_SEED,
    temperature: Optional[float] = None,
    sample_below: float = SAMPLE_BELOW,
    chunk_voxels: int = DEFAULT_CHUNK_VOXELS,
    threads: int = DEFAULT_CPU_THREADS,
    progress: Optional[ProgressCallback] = None,
    cancel: Optional[CancelToken] = None,
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
            class is below this (1.0: every voxel of the sampled box).
        chunk_voxels: voxels per chunk (memory: about 30 floats per voxel per sample).
        threads: torch CPU threads while running on the CPU.
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
        raise ValueError("the segmentation kept no decoder features; run segment_volume(..., keep_features=True)")
    progress = progress or no_progress
    started = time.perf_counter()
    device = model.device
    sampler = head_sampler(model.network, samples, seed, device)
    probabilities = result.probabilities
    out = UncertaintyResult(
        entropy=_deterministic_entropy(probabilities),
        mutual_information=np.zeros(probabilities.shape[1:], dtype=np.float32),
        variance=np.zeros(probabilities.shape[1:], dtype=np.float32),
        mean_probabilities=probabilities.copy(),
        sampled_box=sampled_box(result),
        samples=samples,
        seed=seed,
    )
    territories = {key: _territory(region.mask) for key, region in (regions or {}).items()}
    counts = {key: np.zeros((3, samples), dtype=np.int64) for key in territories}  # intersection, sample, reference
    if out.sampled_box is not None:
        chunks = list(iter_chunks(out.sampled_box, chunk_voxels))
        threads_context = cpu_threads(threads) if device.type == "cpu" else contextlib.nullcontext()
        with threads_context:
            for index, chunk in enumerate(chunks):
                check_cancelled(cancel)
                deterministic = probabilities[(slice(None),) + chunk].astype(np.float32)  # numpy float16 maths is slow
                selected = deterministic.max(axis=0) < sample_below
                predicted = deterministic.argmax(axis=0).astype(np.uint8)
                votes = np.broadcast_to(predicted, (samples,) + selected.shape).copy()
                found = ndimage.find_objects(selected.astype(np.uint8))
                if found and found[0] is not None:
                    # Only the selected voxels' bounding box in this chunk runs the head.
                    local = found[0]
                    sub = tuple(slice(c.start + part.start, c.start + part.stop) for c, part in zip(chunk, local))
                    picked = selected[local]
                    chosen = torch.from_numpy(np.ascontiguousarray(picked)).to(device)
                    maps = voxel_uncertainty(sample_probabilities(sampler, result.features, sub, device, temperature, chosen))
                    out.entropy[sub][picked] = maps.entropy.cpu().numpy()
                    out.mutual_information[sub][picked] = maps.mutual_information.cpu().numpy()
                    out.variance[sub][picked] = maps.variance.cpu().numpy()
                    mean = out.mean_probabilities[(slice(None),) + sub]
                    mean[:, picked] = maps.mean.cpu().numpy().astype(np.float16)
                    votes[(slice(None),) + local][:, picked] = maps.votes.cpu().numpy()
                    predicted[local][picked] = maps.predicted.cpu().numpy()
                _count_agreement(torch.from_numpy(votes), torch.from_numpy(predicted), chunk, regions or {}, territories, counts)
                progress((index + 1) / len(chunks), f"uncertainty: chunk {index + 1}/{len(chunks)} ({samples} samples)")
    for key, (intersection, sample_size, reference_size) in counts.items():
        total = sample_size + reference_size
        out.agreement[key] = np.where(total > 0, 2.0 * intersection / np.maximum(total, 1), 1.0)
    out.seconds = time.perf_counter() - started
    return out


def sampled_box(result: SegmentationResult, margin: int = BOX_MARGIN_VOXELS) -> Optional[tuple[slice, slice, slice]]:
    """The ``[k, j, i]`` box that is sampled: segments and unconfident voxels, plus ``margin``."""
    interesting = result.model_labels > 0
    for start in range(0, interesting.shape[0], 16):  # float32 slabs: numpy float16 maths is slow
        slab = result.probabilities[:, start:start + 16].astype(np.float32)
        interesting[start:start + 16] |= slab.max(axis=0) < CONFIDENT_PROBABILITY
    found = ndimage.find_objects(interesting.astype(np.uint8))
    if not found or found[0] is None:
        return None
    return tuple(slice(max(0, s.start - margin), min(n, s.stop + margin)) for s, n in zip(found[0], interesting.shape))  # type: ignore[return-value]


def _deterministic_entropy(probabilities: np.ndarray) -> np.ndarray:
    """Entropy (nats) of the deterministic softmax, computed slab by slab in float32."""
    out = np.empty(probabilities.shape[1:], dtype=np.float32)
    for start in range(0, out.shape[0], 16):
        part = torch.from_numpy(probabilities[:, start:start + 16].astype(np.float32))
        out[start:start + 16] = entropy_along(part, 0).numpy()
    return out


def _territory(mask: np.ndarray) -> tuple[tuple[slice, slice, slice], np.ndarray] | None:
    """The region grown by :data:`AGREEMENT_MARGIN_VOXELS`, as (box, mask in the box)."""
    found = ndimage.find_objects(mask.astype(np.uint8))
    if not found or found[0] is None:
        return None
    m = AGREEMENT_MARGIN_VOXELS
    box = tuple(slice(max(0, s.start - m), min(n, s.stop + m)) for s, n in zip(found[0], mask.shape))
    grown = ndimage.binary_dilation(mask[box], structure=np.ones((3, 3, 3), bool), iterations=m)
    return box, grown  # type: ignore[return-value]


def _count_agreement(votes: torch.Tensor, reference: torch.Tensor, chunk: tuple[slice, slice, slice],
                     regions: Mapping[object, AgreementRegion], territories: dict, counts: dict) -> None:
    """Add this chunk's per-sample intersections and sizes inside each region's territory."""
    for key, territory in territories.items():
        if territory is None:
            continue
        box, grown = territory
        overlap = tuple(slice(max(a.start, b.start), min(a.stop, b.stop)) for a, b in zip(chunk, box))
        if any(part.stop <= part.start for part in overlap):
            continue
        in_chunk = tuple(slice(o.start - c.start, o.stop - c.start) for o, c in zip(overlap, chunk))
        in_box = tuple(slice(o.start - b.start, o.stop - b.start) for o, b in zip(overlap, box))
        inside = torch.from_numpy(np.ascontiguousarray(grown[in_box])).to(votes.device)
        raw_class = regions[key].raw_class
        sample_masks = (votes[(slice(None),) + in_chunk] == raw_class) & inside
        reference_mask = (reference[in_chunk] == raw_class) & inside
        counts[key][0] += (sample_masks & reference_mask).flatten(1).sum(1).cpu().numpy()
        counts[key][1] += sample_masks.flatten(1).sum(1).cpu().numpy()
        counts[key][2] += int(reference_mask.sum())
