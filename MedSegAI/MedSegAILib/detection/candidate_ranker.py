"""A learned order for the candidate generator: which LoG maxima deserve one of the few
hundred places the patch classifier looks at.

The classical order (response x blobness, per HU window) puts faint ground-glass nodules
behind hundreds of vessel branchings. The ranker is a small MLP on each maximum's own
descriptors (:data:`.candidates.FEATURE_NAMES`: the LoG response across scales, the Hessian
eigenvalue ratios, the smoothed HU around it), trained on training scans with inserted nodules
(:mod:`.ranker_training`) so that every nodule, large or small, weighs the same. It never sees
a patch, so it cannot memorise a scan's anatomy the way a CNN can; it only reorders maxima.

The weights ship as safetensors (the feature standardisation is part of them), named with
their SHA-256 in the ``candidate_ranker`` entry of ``detection_card.json``, checked before loading.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch
from torch import nn

from ..errors import InputError
from ..models.weights import load_state_dict
from .candidates import FEATURE_NAMES

HIDDEN = 64


class CandidateRanker(nn.Module):
    """Standardised features, then two hidden layers of ``HIDDEN`` ReLU units and a logit."""

    def __init__(self, features: int = len(FEATURE_NAMES), hidden: int = HIDDEN) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(features))
        self.register_buffer("std", torch.ones(features))
        self.mlp = nn.Sequential(nn.Linear(features, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, 1))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Logits ``(n,)`` of raw features ``(n, len(FEATURE_NAMES))``."""
        return self.mlp((features - self.mean) / self.std).squeeze(1)

    def scores(self, features: np.ndarray) -> np.ndarray:
        """Logits of a feature matrix, as :func:`.candidates.find_candidates` takes them (higher first)."""
        with torch.inference_mode():
            return self(torch.from_numpy(np.ascontiguousarray(features, dtype=np.float32))).numpy()


def save_ranker(ranker: CandidateRanker, path: str | Path) -> None:
    """Write the ranker's weights (and standardisation) as safetensors."""
    from safetensors.torch import save_file

    save_file({name: tensor.detach().contiguous() for name, tensor in ranker.state_dict().items()}, str(path))


def load_ranker(path: str | Path, sha256: str) -> CandidateRanker:
    """Load a ranker after checking its SHA-256.

    Raises:
        InputError: the file is missing, altered or does not fit this version's features.
    """
    ranker = CandidateRanker()
    try:
        ranker.load_state_dict(load_state_dict(path, sha256))
    except RuntimeError as error:
        raise InputError(f"{path}: not a candidate ranker for this MedSegAI version's {len(FEATURE_NAMES)} features "
                         f"({str(error).strip().splitlines()[0]}); retrain it with "
                         "python -m MedSegAILib.detection.ranker_training") from None
    return ranker.eval()


def ranker_from_card(folder: Path, card: dict[str, Any]) -> Optional[CandidateRanker]:
    """The ranker named by a detection card's ``candidate_ranker`` entry, or ``None`` (classical order) without one.

    Raises:
        InputError: the entry lacks ``file`` or ``sha256``, names other features, or the weights are altered.
    """
    entry = card.get("candidate_ranker")
    if entry is None:
        return None
    try:
        file, sha256 = entry["file"], entry["sha256"]
        features = tuple(entry.get("features", FEATURE_NAMES))
    except (KeyError, TypeError) as error:
        raise InputError(f"{folder}: the detection card's candidate_ranker needs file and sha256 ({error!r})") from None
    if features != FEATURE_NAMES:
        raise InputError(f"{folder}: the candidate ranker was trained on other features than this version computes; "
                         "retrain it with python -m MedSegAILib.detection.ranker_training")
    return load_ranker(folder / file, sha256)
