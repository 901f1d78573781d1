"""Train the candidate ranker (:mod:`.candidate_ranker`) on training scans with inserted nodules.

    python -m MedSegAILib.detection.ranker_training [--replicates 60] [--steps 2000]
    python -m MedSegAILib.detection.classifier_training ...   # then retrain the classifier on the new order

1. Scans: copies ``0 .. replicates - 1`` of the training hosts (:mod:`.training_scans`); the
   last ``--validation`` copies of each host and variant are kept out of training and measure
   the candidate recall.
2. Every LoG maximum of both HU windows (:func:`.candidates.peak_table`) is a sample; one
   within a nodule's hit radius (the FROC criterion) is a positive. Each nodule's positives
   share a weight of 1, so a 30 mm mass with forty maxima counts as much as a 6 mm nodule
   with one; half of every batch is drawn from the positives by that weight, half uniformly
   from the rest.
3. The MLP trains with AdamW (one-cycle) on standardised features. Its weights go into
   ``candidate_ranker.safetensors`` and the ``candidate_ranker`` entry of
   ``detection_card.json`` (with the validation recall, classical against learned order);
   the card's nodule classifier entry is kept, but was fitted on the old order: retrain it.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch

from .candidate_ranker import CandidateRanker, save_ranker
from .candidates import FEATURE_NAMES, MAX_CANDIDATES, filled_lungs, find_candidates, peak_table, search_region
from .froc import MIN_HIT_RADIUS_MM
from .nodule_scorer import DETECTION_CARD
from .training_scans import HELD_OUT_HOSTS, TRAINING_HOSTS, training_copies

RANKER_FILE = "candidate_ranker.safetensors"
MIN_RECALL_DIAMETER_MM = 6.0


def peak_samples(grid, lungs: np.ndarray, nodules: Sequence) -> tuple[np.ndarray, np.ndarray]:
    """Features of every maximum in ``grid``'s lungs and its sample weight: the share of the nodule
    it hits (0 for maxima on no nodule)."""
    spacing = float(np.mean(grid.spacing))
    table = peak_table(grid, search_region(filled_lungs(lungs, spacing), lungs, spacing))
    centers = np.array([grid.ijk_to_lps(point[::-1].astype(float)) for point in table.points]).reshape(-1, 3)
    weights = np.zeros(len(centers))
    for nodule in nodules:
        hit = np.linalg.norm(centers - np.asarray(nodule.center), axis=1) <= max(nodule.diameter_mm / 2.0, MIN_HIT_RADIUS_MM)
        if hit.any():
            weights[hit] += 1.0 / hit.sum()
    return table.features, weights


def train_ranker(features: np.ndarray, weights: np.ndarray, steps: int, batch: int = 4096, seed: int = 0) -> CandidateRanker:
    """An MLP that scores maxima on nodules (``weights > 0``) above the rest, each nodule weighing
    the same (see the module docstring)."""
    torch.manual_seed(seed)
    ranker = CandidateRanker()
    ranker.mean.copy_(torch.from_numpy(features.mean(axis=0)))
    ranker.std.copy_(torch.from_numpy(features.std(axis=0) + 1e-6))
    positive = weights > 0
    if not positive.any() or positive.all():
        raise ValueError("need maxima on nodules and maxima elsewhere to train the ranker")
    sampling = np.where(positive, weights / weights[positive].sum(), 1.0 / (~positive).sum()) / 2.0
    x = torch.from_numpy(features.astype(np.float32))
    y = torch.from_numpy(positive.astype(np.float32))
    draw = torch.from_numpy(sampling)
    optimizer = torch.optim.AdamW(ranker.parameters(), lr=3e-3, weight_decay=1e-3)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, 3e-3, total_steps=steps)
    ranker.train()
    for _ in range(steps):
        index = torch.multinomial(draw, batch, replacement=True)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(ranker(x[index]), y[index])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
    return ranker.eval()


def candidate_recall(copies: Sequence, ranker: Optional[CandidateRanker]) -> dict[str, list[int]]:
    """Per nodule kind, ``[nodules of 6 mm or more with a candidate, nodules]`` among the first
    ``MAX_CANDIDATES`` candidates, in the ranker's order (``None``: classical)."""
    tally: dict[str, list[int]] = {}
    for copy in copies:
        spacing = float(np.mean(copy.grid.spacing))
        region = search_region(filled_lungs(copy.lungs, spacing), copy.lungs, spacing)
        found = find_candidates(copy.grid, region, MAX_CANDIDATES, ranker.scores if ranker is not None else None)
        centers = np.array([c.center_lps for c in found]).reshape(-1, 3)
        for nodule, kind in zip(copy.case.nodules, copy.case.kinds):
            if kind == "real" or nodule.diameter_mm < MIN_RECALL_DIAMETER_MM:
                continue
            radius = max(nodule.diameter_mm / 2.0, MIN_HIT_RADIUS_MM)
            counts = tally.setdefault(kind, [0, 0])
            counts[0] += bool(np.any(np.linalg.norm(centers - np.asarray(nodule.center), axis=1) <= radius))
            counts[1] += 1
    return tally


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Collect maxima, train, measure the validation recall, write weights and the card entry."""
    from ..inference.device import select_device
    from ..models.registry import load_model, resolve_model
    from ..models.weights import sha256_of_file

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="segmentation model whose lungs and grid are used (default: chest_ct)")
    parser.add_argument("--replicates", type=int, default=60, help="copies of each training host and variant")
    parser.add_argument("--validation", type=int, default=10, help="of them, the last ones kept out of training")
    parser.add_argument("--nodules", type=int, default=5, help="nodules inserted per copy")
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--out-dir", default=None, help="where to write (default: the model's folder)")
    args = parser.parse_args(argv)
    if not 0 < args.validation < args.replicates:
        parser.error("--validation must be between 1 and --replicates - 1")
    torch.set_num_threads(2)
    card = resolve_model(args.model)
    model = load_model(card, select_device("cpu"))
    first_validation = args.replicates - args.validation
    features, weights, validation, nodules = [], [], [], 0
    for copy in training_copies(model, args.replicates, args.nodules):
        if int(copy.case.name.rsplit("#", 1)[1]) >= first_validation:
            validation.append(copy)
            continue
        copy_features, copy_weights = peak_samples(copy.grid, copy.lungs, copy.case.nodules)
        features.append(copy_features)
        weights.append(copy_weights)
        nodules += len(copy.case.nodules)
        print(f"{copy.case.name}: {len(copy_features)} maxima", flush=True)
    features_array, weights_array = np.concatenate(features), np.concatenate(weights)
    started = time.perf_counter()
    ranker = train_ranker(features_array, weights_array, args.steps)
    minutes = (time.perf_counter() - started) / 60.0
    recall = {"classical": candidate_recall(validation, None), "learned": candidate_recall(validation, ranker)}
    out_dir = Path(args.out_dir) if args.out_dir else card.folder
    out_dir.mkdir(parents=True, exist_ok=True)
    save_ranker(ranker, out_dir / RANKER_FILE)
    record = json.loads((out_dir / DETECTION_CARD).read_text()) if (out_dir / DETECTION_CARD).is_file() else {}
    record["candidate_ranker"] = {
        "file": RANKER_FILE,
        "sha256": sha256_of_file(out_dir / RANKER_FILE),
        "architecture": "CandidateRanker (detection/candidate_ranker.py): standardised features, MLP "
                        f"{len(FEATURE_NAMES)}-64-64-1",
        "features": list(FEATURE_NAMES),
        "order": "two of every three places by the ranker, the third by the solid window's classical rank",
        "training_hosts": list(TRAINING_HOSTS),
        "held_out_hosts": list(HELD_OUT_HOSTS),
        "training_copies": len(features),
        "training_nodules": nodules,
        "maxima": len(features_array),
        "validation": {"copies": len(validation), "replicates": [first_validation, args.replicates - 1],
                       "nodules_with_candidate_by_kind": recall,
                       "definition": f"inserted nodules of {MIN_RECALL_DIAMETER_MM:g} mm or more with a candidate among "
                                     f"the first {MAX_CANDIDATES}"},
        "steps": args.steps,
        "training_minutes": round(minutes, 1),
        "command": "python -m MedSegAILib.detection.ranker_training " + " ".join(argv if argv is not None else sys.argv[1:]),
    }
    (out_dir / DETECTION_CARD).write_text(json.dumps(record, indent=2) + "\n")
    print(f"validation recall {recall}; wrote {out_dir / RANKER_FILE} and the candidate_ranker entry of {DETECTION_CARD}; "
          "retrain the nodule classifier on the new order (classifier_training)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
