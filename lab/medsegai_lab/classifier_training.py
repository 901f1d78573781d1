"""Train the nodule patch classifier on candidates from training scans with inserted nodules.

    python -m medsegai_lab.classifier_training [--replicates 12] [--steps 2000] [--members 1]

1. Hosts: the training scans (chest_ct_dicom with its real mass, TotalSegmentator chest
   crop a, the abdomen scan's lung bases), each as acquired and degraded to a 4.2 x 4.2 x 4 mm
   grid (so coarse screening-like scans are not a surprise). CIP ct-64 and TotalSegmentator
   chest crop b are held out for evaluation (lab/experiments/detect_froc.py).
2. Each host is segmented once (its lungs on the model grid); each replicate inserts new
   nodules (:mod:`..training.synthetic_nodules`, seeds ``1000 * (2 * host + coarse) + replicate``, all below
   the held-out seeds 100000+) and runs the candidate generator (:mod:`.candidates`).
   Candidates whose centre hits a nodule (the FROC hit criterion) are positives, all others
   negatives; every nodule adds two positives at jittered centres.
3. The CNN (:mod:`.patch_classifier`) is trained on class-balanced batches with flips, axis
   permutations, HU offsets and noise; with ``--members N``, N of them with seeds 0..N-1,
   whose logits are averaged (:class:`.patch_classifier.NoduleEnsemble`).
4. Stacking (:func:`out_of_fold_logits`): one more network (of as many members) per training
   host, trained without it, scores that host's candidates. On these out-of-fold logits a
   logistic regression fits how much the candidate generator's own rank adds (the rank
   weight), then Platt scaling calibrates the fused logit (:mod:`.nodule_scorer`). The
   weights of the network (or ensemble) trained on every host, the fusion, the calibration
   and the figures go into ``nodule_classifier.safetensors`` and ``detection_card.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import SimpleITK as sitk
import torch
from MedSegAILib.detection.candidates import filled_lungs, find_candidates, search_region
from MedSegAILib.detection.detector import DEFAULT_THRESHOLD
from MedSegAILib.detection.froc import PredictedFinding, is_hit
from MedSegAILib.detection.nodule_scorer import calibrate, fit_platt, fit_rank_weight, fuse
from MedSegAILib.detection.patch_classifier import (
    PATCH_SPACING_MM,
    PATCH_VOXELS,
    NoduleClassifier,
    NoduleEnsemble,
    PatchNetwork,
    extract_patches,
    normalize,
    patch_logits,
    save_classifier,
)
from MedSegAILib.io.shared_data import shared_data_path
from MedSegAILib.io.volume import Volume

DATA = shared_data_path()
TRAINING_HOSTS = (
    "chest_ct_dicom",
    "totalsegmentator/chest_ct_crop_a_1p5mm.nii.gz",
    "totalsegmentator/abdomen_ct_3mm.nii.gz",
)
HELD_OUT_HOSTS = ("cip_lung_ct/ct-64.nrrd", "totalsegmentator/chest_ct_crop_b_1p5mm.nii.gz")
COARSE_SPACING = (4.2, 4.2, 4.0)
CLASSIFIER_FILE = "nodule_classifier.safetensors"


@dataclass
class PatchSet:
    """Candidate patches (int16 HU), labels (1 nodule, 0 other) and the scan each came from."""

    patches: list[np.ndarray] = field(default_factory=list)
    labels: list[np.ndarray] = field(default_factory=list)
    scans: list[np.ndarray] = field(default_factory=list)

    def add(self, patches: np.ndarray, labels: np.ndarray, scan: int) -> None:
        self.patches.append(np.clip(patches, -1024, 3071).astype(np.int16))
        self.labels.append(labels.astype(np.int8))
        self.scans.append(np.full(len(labels), scan, dtype=np.int32))

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return np.concatenate(self.patches), np.concatenate(self.labels), np.concatenate(self.scans)


def coarsen(volume: Volume, spacing: Sequence[float] = COARSE_SPACING) -> Volume:
    """``volume`` smoothed and resampled to a coarser grid, as a low-dose screening scan looks."""
    image = volume.to_sitk()
    sigma = [max(0.0, (new**2 - old**2)) ** 0.5 / 2.355 for new, old in zip(spacing, image.GetSpacing())]
    smoothed = sitk.SmoothingRecursiveGaussian(image, sigma) if max(sigma) > 0 else image
    size = [
        max(1, int(round(n * old / new))) for n, old, new in zip(image.GetSize(), image.GetSpacing(), spacing)
    ]
    resampled = sitk.Resample(
        smoothed,
        size,
        sitk.Transform(),
        sitk.sitkLinear,
        image.GetOrigin(),
        spacing,
        image.GetDirection(),
        -1024.0,
        sitk.sitkFloat32,
    )
    return Volume.from_sitk(resampled)


def label_candidates(centers: np.ndarray, nodules: Sequence) -> np.ndarray:
    """1 for candidates whose centre hits one of ``nodules``, else 0."""
    return np.array(
        [int(any(is_hit(PredictedFinding(tuple(c), 0.0), n) for n in nodules)) for c in centers],
        dtype=np.int8,
    )


def collect(
    model, replicates: int, nodules: int, max_candidates: int, log=print
) -> tuple[PatchSet, list[dict]]:
    """Candidate patches from every training host and replicate (see the module docstring)."""
    from MedSegAILib.detection.pipeline import lung_region
    from MedSegAILib.inference.engine import segment_volume
    from MedSegAILib.inference.preprocess import prepare_input
    from MedSegAILib.io.reader import read_volume
    from MedSegAILib.training.synthetic_nodules import placement_maps

    from medsegai_lab.nodule_cases import insert_nodules, lungs_and_real_masses

    patches, scans = PatchSet(), []
    rng = np.random.default_rng(0)
    for host_index, host in enumerate(TRAINING_HOSTS):
        original = read_volume(DATA / host)
        for variant, volume in (("native", original), ("coarse", coarsen(original))):
            lung, real = lungs_and_real_masses(volume)
            host_lungs = lung_region(segment_volume(volume, model, threads=2))
            maps = placement_maps(volume.array, lung, volume.spacing)
            for replicate in range(replicates):
                seed = 1000 * (2 * host_index + (variant == "coarse")) + replicate
                case = insert_nodules(
                    f"{host}:{variant}#{replicate}",
                    volume,
                    lung,
                    nodules,
                    seed,
                    diameter_range=(4.0, 30.0),
                    existing=real,
                    maps=maps,
                )
                grid = prepare_input(
                    case.volume, model.card, divisor=int(getattr(model.network, "divisor", 1))
                ).model_grid
                lungs = (
                    host_lungs
                    if grid.array.shape == host_lungs.shape
                    else lung_region(segment_volume(case.volume, model, threads=2))
                )
                spacing = float(np.mean(grid.spacing))
                candidates = find_candidates(
                    grid, search_region(filled_lungs(lungs, spacing), lungs, spacing), max_candidates
                )
                centers = np.array([c.center_lps for c in candidates]).reshape(-1, 3)
                labels = label_candidates(centers, case.nodules)
                jittered = np.array([n.center for n in case.nodules for _ in range(2)]).reshape(-1, 3)
                jittered = jittered + rng.uniform(-3.0, 3.0, size=jittered.shape)
                scan = len(scans)
                patches.add(
                    extract_patches(grid, np.vstack([centers, jittered])),
                    np.concatenate([labels, np.ones(len(jittered), dtype=np.int8)]),
                    scan,
                )
                found = sum(
                    any(is_hit(PredictedFinding(tuple(c), 0.0), n) for c in centers) for n in case.nodules
                )
                scans.append(
                    {
                        "scan": case.name,
                        "seed": seed,
                        "nodules": len(case.nodules),
                        "nodules_with_candidate": int(found),
                        "candidates": len(candidates),
                        "true_candidates": int(labels.sum()),
                    }
                )
                log(
                    f"{case.name}: {found}/{len(case.nodules)} nodules have a candidate; "
                    f"{len(candidates)} candidates",
                    flush=True,
                )
    return patches, scans


def augment(batch: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Random flips, axis permutation, HU offset and noise of a ``(n, d, h, w)`` HU batch."""
    out = np.empty_like(batch, dtype=np.float32)
    for index, patch in enumerate(batch.astype(np.float32)):
        patch = np.transpose(patch, rng.permutation(3))
        for axis in range(3):
            if rng.random() < 0.5:
                patch = np.flip(patch, axis)
        out[index] = patch + rng.normal(0.0, 30.0) + rng.normal(0.0, rng.uniform(0.0, 40.0), size=patch.shape)
    return out


def train(
    patches: np.ndarray, labels: np.ndarray, steps: int, batch: int = 64, seed: int = 0, log=print
) -> NoduleClassifier:
    """Train the classifier on class-balanced batches (3/8 positives)."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    network = NoduleClassifier()
    optimizer = torch.optim.AdamW(network.parameters(), lr=2e-3, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=2e-3, total_steps=steps, pct_start=0.1)
    positives, negatives = np.flatnonzero(labels == 1), np.flatnonzero(labels == 0)
    n_positive = batch * 3 // 8
    started = time.perf_counter()
    running = 0.0
    for step in range(1, steps + 1):
        chosen = np.concatenate(
            [rng.choice(positives, n_positive), rng.choice(negatives, batch - n_positive)]
        )
        x = torch.from_numpy(normalize(augment(patches[chosen], rng)))[:, None]
        y = torch.from_numpy(labels[chosen].astype(np.float32))
        network.train()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(network(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        value = float(loss.detach())
        running = 0.98 * running + 0.02 * value if step > 1 else value
        if step % 100 == 0 or step == steps:
            log(f"step {step}/{steps}: loss {running:.4f} ({time.perf_counter() - started:.0f} s)")
    return network.eval()


def train_ensemble(
    patches: np.ndarray, labels: np.ndarray, steps: int, members: int, batch: int = 64, log=print
) -> PatchNetwork:
    """``members`` networks trained alike with seeds 0, 1, ... and averaged
    (:class:`.patch_classifier.NoduleEnsemble`); one member is a plain
    :class:`.patch_classifier.NoduleClassifier`."""
    networks = [train(patches, labels, steps, batch=batch, seed=seed, log=log) for seed in range(members)]
    return networks[0] if members == 1 else NoduleEnsemble.of(networks)


def candidate_ranks(scan_ids: np.ndarray, scans: Sequence[dict]) -> tuple[np.ndarray, np.ndarray]:
    """Each patch's place in its scan's candidate ranking, and whether it is a candidate at all
    (the jittered extra nodule patches that follow each scan's candidates are not)."""
    counts = np.bincount(scan_ids, minlength=len(scans))
    ranks = np.concatenate([np.arange(n) for n in counts])
    return ranks, ranks < np.repeat([s["candidates"] for s in scans], counts)


def scan_hosts(scans: Sequence[dict]) -> np.ndarray:
    """The training host of each scan record (its name before ``:``)."""
    return np.array([TRAINING_HOSTS.index(s["scan"].split(":")[0]) for s in scans])


def out_of_fold_logits(
    patches: np.ndarray,
    labels: np.ndarray,
    hosts: np.ndarray,
    candidates: np.ndarray,
    steps: int,
    members: int = 1,
    log=print,
) -> np.ndarray:
    """Logits of every candidate patch from a network (of ``members`` seeds, as shipped) trained
    without its host (NaN elsewhere)."""
    logits = np.full(len(labels), np.nan)
    for host in np.unique(hosts):
        started = time.perf_counter()
        network = train_ensemble(
            patches[hosts != host], labels[hosts != host], steps, members, log=lambda *a, **k: None
        )
        chosen = (hosts == host) & candidates
        logits[chosen] = patch_logits(network, patches[chosen].astype(np.float32))
        log(f"fold without {TRAINING_HOSTS[host]}: {time.perf_counter() - started:.0f} s", flush=True)
    return logits


def training_figures(scores: np.ndarray, labels: np.ndarray, scans: np.ndarray, threshold: float) -> dict:
    """False candidates per scan and the fraction of true candidates kept at ``threshold``."""
    kept = scores >= threshold
    return {
        "threshold": threshold,
        "false_positives_per_scan": round(float((kept & (labels == 0)).sum()) / len(np.unique(scans)), 3),
        "true_candidates_kept": round(
            float((kept & (labels == 1)).sum()) / max(int((labels == 1).sum()), 1), 3
        ),
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Collect candidates, train, stack (rank weight and calibration), write weights and card."""
    from MedSegAILib.inference.device import select_device
    from MedSegAILib.models.registry import load_model, resolve_model
    from MedSegAILib.models.weights import sha256_of_file

    from medsegai_lab.uncertainty_evaluation import auroc

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--model", default=None, help="segmentation model whose lungs and grid are used (default: chest_ct)"
    )
    parser.add_argument(
        "--replicates", type=int, default=12, help="copies of each training host with new nodules"
    )
    parser.add_argument("--nodules", type=int, default=5, help="nodules inserted per copy")
    parser.add_argument("--max-candidates", type=int, default=300)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument(
        "--members", type=int, default=1, help="networks (seeds 0, 1, ...) whose logits are averaged"
    )
    parser.add_argument("--cache", default=None, help="npz of collected patches to reuse or write")
    parser.add_argument("--out-dir", default=None, help="where to write (default: the model's folder)")
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    card = resolve_model(args.model)
    model = load_model(card, select_device("cpu"))
    out_dir = Path(args.out_dir) if args.out_dir else card.folder
    cache = Path(args.cache) if args.cache else None
    if cache and cache.is_file():
        stored = np.load(cache, allow_pickle=False)
        patches, labels, scan_ids = stored["patches"], stored["labels"], stored["scans"]
        scans = json.loads(str(stored["scan_records"]))
    else:
        collected, scans = collect(model, args.replicates, args.nodules, args.max_candidates)
        patches, labels, scan_ids = collected.arrays()
        if cache:
            np.savez(cache, patches=patches, labels=labels, scans=scan_ids, scan_records=json.dumps(scans))
    print(
        f"{len(labels)} patches: {int(labels.sum())} nodule, {int((labels == 0).sum())} other, "
        f"{len(scans)} scans",
        flush=True,
    )
    started = time.perf_counter()
    network = train_ensemble(patches, labels, args.steps, args.members)
    minutes = (time.perf_counter() - started) / 60.0
    # Stacking on out-of-fold logits of the candidates themselves, at their natural frequency
    # (jittered extras excluded).
    ranks, real_candidates = candidate_ranks(scan_ids, scans)
    hosts = scan_hosts(scans)[scan_ids]
    oof = out_of_fold_logits(patches, labels, hosts, real_candidates, args.steps, args.members)[
        real_candidates
    ]
    y, rank, host = labels[real_candidates], ranks[real_candidates], hosts[real_candidates]
    rank_weight = fit_rank_weight(oof, rank, y)
    fused = fuse(oof, rank, rank_weight)
    slope, intercept = fit_platt(fused, y)
    scores = calibrate(fused, slope, intercept)
    figures = training_figures(scores, y, scan_ids[real_candidates], DEFAULT_THRESHOLD)
    by_host = {
        TRAINING_HOSTS[h]: {
            name: None if (area := auroc(values[host == h], y[host == h])) is None else round(area, 3)
            for name, values in (("network", oof), ("rank", -rank), ("fused", fused))
        }
        for h in np.unique(host)
    }
    architecture = (
        "NoduleClassifier"
        if args.members == 1
        else (
            f"NoduleEnsemble of {args.members} NoduleClassifier "
            f"(seeds 0..{args.members - 1}, logits averaged)"
        )
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    save_classifier(network, out_dir / CLASSIFIER_FILE)
    record = {
        "nodule_classifier": {
            "file": CLASSIFIER_FILE,
            "sha256": sha256_of_file(out_dir / CLASSIFIER_FILE),
            "architecture": architecture + " (detection/patch_classifier.py)",
            "patch_voxels": PATCH_VOXELS,
            "patch_spacing_mm": PATCH_SPACING_MM,
            "fusion": {
                "rank_weight": rank_weight,
                "method": "logit + rank_weight * log(1 + candidate rank), "
                "the weight from a logistic regression on leave-one-training-host-out logits",
                "out_of_fold_auc": by_host,
            },
            "calibration": {
                "method": "Platt scaling of the fused out-of-fold logits of the training candidates",
                "slope": slope,
                "intercept": intercept,
            },
            "training_candidates_at_default_threshold": figures | {"scores": "out of fold"},
            "training_hosts": list(TRAINING_HOSTS),
            "held_out_hosts": list(HELD_OUT_HOSTS),
            "training_scans": scans,
            "patches": {"nodule": int(labels.sum()), "other": int((labels == 0).sum())},
            "steps": args.steps,
            "training_minutes": round(minutes, 1),
            "command": "python -m medsegai_lab.classifier_training "
            + " ".join(argv if argv is not None else sys.argv[1:]),
        }
    }
    (out_dir / "detection_card.json").write_text(json.dumps(record, indent=2) + "\n")
    print(f"rank weight {rank_weight:.3f}; out-of-fold AUC {by_host}")
    print(
        f"calibration slope {slope:.3f} intercept {intercept:.3f}; at {DEFAULT_THRESHOLD}: {figures}; "
        f"wrote {out_dir / CLASSIFIER_FILE} and detection_card.json"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
