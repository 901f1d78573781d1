"""Per-voxel uncertainty from N Monte-Carlo softmax samples (natural logarithm, nats).

- predictive entropy ``H[mean_n p_n]``: total uncertainty, 0 .. ln(K);
- mutual information (BALD) ``H[mean_n p_n] - mean_n H[p_n]``: the epistemic part, the
  disagreement between samples (0 when every sample says the same);
- variance: the variance across samples of the probability of the mean prediction's class.

Samples are laid out ``(N, K, ...)``. Reductions over the few classes are written as
K - 1 element-wise operations on contiguous class planes: torch's reductions over a small
dimension are several times slower on the CPU.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class VoxelUncertainty:
    """Maps for one chunk, each ``(d, h, w)``; ``mean`` is ``(K, d, h, w)``; ``votes`` is
    ``(N, d, h, w)``, the class each sample predicts; ``predicted`` the mean's class."""

    mean: torch.Tensor
    entropy: torch.Tensor
    mutual_information: torch.Tensor
    variance: torch.Tensor
    votes: torch.Tensor
    predicted: torch.Tensor


def softmax(logits: torch.Tensor, dim: int) -> torch.Tensor:
    """Softmax along a small ``dim`` (the classes)."""
    planes = logits.unbind(dim)
    peak = planes[0]
    for plane in planes[1:]:
        peak = torch.maximum(peak, plane)
    exps = [torch.exp(plane - peak) for plane in planes]
    total = _sum(exps)
    return torch.stack([e / total for e in exps], dim)


def entropy(probabilities: torch.Tensor, dim: int) -> torch.Tensor:
    """Shannon entropy in nats along a small ``dim``."""
    return -_sum([torch.special.xlogy(plane, plane) for plane in probabilities.unbind(dim)])


def argmax(values: torch.Tensor, dim: int) -> torch.Tensor:
    """Index of the largest entry along a small ``dim`` (first one on ties), uint8."""
    planes = values.unbind(dim)
    best, index = planes[0], torch.zeros(planes[0].shape, dtype=torch.uint8, device=values.device)
    for k, plane in enumerate(planes[1:], start=1):
        better = plane > best
        index = torch.where(better, torch.full_like(index, k), index)
        best = torch.maximum(best, plane)
    return index


def voxel_uncertainty(samples: torch.Tensor) -> VoxelUncertainty:
    """Uncertainty maps from softmax samples.

    Args:
        samples: ``(N, K, ...)`` probabilities (each sample sums to 1 over K).

    Returns:
        The maps (see the module docstring).
    """
    count = samples.shape[0]
    mean = _sum(list(samples.unbind(0))) / count
    predictive = entropy(mean, 0)
    expected = _sum(list(entropy(samples, 1).unbind(0))) / count
    predicted = argmax(mean, 0)
    chosen = samples.gather(1, predicted.long()[None, None].expand(count, 1, *predicted.shape))[:, 0]
    chosen_mean = _sum(list(chosen.unbind(0))) / count
    variance = _sum([(plane - chosen_mean) ** 2 for plane in chosen.unbind(0)]) / count
    return VoxelUncertainty(
        mean=mean,
        entropy=predictive,
        mutual_information=(predictive - expected).clamp_min(0.0),
        variance=variance,
        votes=argmax(samples, 1),
        predicted=predicted,
    )


def _sum(planes: list[torch.Tensor]) -> torch.Tensor:
    total = planes[0].clone()
    for plane in planes[1:]:
        total += plane
    return total
