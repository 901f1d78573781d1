"""Per-voxel uncertainty from N Monte-Carlo softmax samples (natural logarithm, nats).

- predictive entropy ``H[mean_n p_n]``: total uncertainty, 0 .. ln(K);
- mutual information (BALD) ``H[mean_n p_n] - mean_n H[p_n]``: the epistemic part, the
  disagreement between samples (0 when every sample says the same);
- variance: the variance across samples of the probability of the mean prediction's class.

Samples are laid out classes last, ``(N, ..., K)``, so every per-voxel reduction runs
over contiguous memory.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

_EPS = 1e-12


@dataclass
class VoxelUncertainty:
    """Maps for one chunk, each ``(d, h, w)``; ``mean`` is ``(d, h, w, K)``; ``votes`` is
    ``(N, d, h, w)``, the class each sample predicts; ``predicted`` the mean's class."""

    mean: torch.Tensor
    entropy: torch.Tensor
    mutual_information: torch.Tensor
    variance: torch.Tensor
    votes: torch.Tensor
    predicted: torch.Tensor


def entropy(probabilities: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Shannon entropy in nats along ``dim``."""
    return -torch.special.xlogy(probabilities, probabilities).sum(dim)


def voxel_uncertainty(samples: torch.Tensor) -> VoxelUncertainty:
    """Uncertainty maps from softmax samples.

    Args:
        samples: ``(N, ..., K)`` probabilities (each sample sums to 1 over K).

    Returns:
        The maps (see the module docstring).
    """
    mean = samples.sum(0) / samples.shape[0]
    predictive = entropy(mean)
    expected = entropy(samples).sum(0) / samples.shape[0]
    predicted = mean.argmax(-1)
    chosen = samples.gather(-1, predicted[None, ..., None].expand(samples.shape[0], *predicted.shape, 1))[..., 0]
    return VoxelUncertainty(
        mean=mean,
        entropy=predictive,
        mutual_information=(predictive - expected).clamp_min(0.0),
        variance=chosen.var(0, unbiased=False),
        votes=samples.argmax(-1),
        predicted=predicted,
    )
