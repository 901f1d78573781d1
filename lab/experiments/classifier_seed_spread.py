"""How far the held-out FROC moves when the nodule classifier is retrained with another seed.

The shipped classifier's design is retrained from the same collected patches with several
training seeds (the shipped network is seed 0 of its own patches); each network keeps the
shipped fusion and calibration, and scores the same held-out copies (ct64 and chest crop b
with inserted nodules, segmented once). The spread between seeds is the noise floor a design
change to the detector has to clear; the last row averages all seeds' logits (an ensemble).

    .venv/bin/python lab/experiments/classifier_seed_spread.py --cache patches.npz [--seeds 0 1 2]
        [--replicates 10] [--crop-replicates 6] [--seed 300000]

``--cache`` is the patch file of ``python -m medsegai_lab.classifier_training --cache``
(written there when absent, which collects the training patches first). Prints a table and
writes lab/results/classifier_seed_spread.json.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch  # noqa: E402
from detect_froc import crop_b_host, ct64_host  # noqa: E402
from lab_setup import RESULTS, machine_record  # noqa: E402  (first: puts the engine on sys.path)
from medsegai_lab.classifier_training import collect, train  # noqa: E402
from medsegai_lab.nodule_cases import insert_nodules  # noqa: E402
from MedSegAILib.detection.detector import detect_nodules  # noqa: E402
from MedSegAILib.detection.froc import PredictedFinding, compute_froc  # noqa: E402
from MedSegAILib.detection.nodule_scorer import NoduleScorer, scorer_for_model  # noqa: E402
from MedSegAILib.detection.patch_classifier import NoduleEnsemble  # noqa: E402
from MedSegAILib.detection.pipeline import lung_region  # noqa: E402
from MedSegAILib.inference.engine import segment_volume  # noqa: E402
from MedSegAILib.models.registry import load_model, resolve_model  # noqa: E402

DIAGNOSIS_SEED = (
    300_000  # copies already used to judge changes; detect_froc's default seeds stay for held-out figures
)
TRAINING_COPIES, NODULES_PER_COPY, MAX_CANDIDATES = 8, 5, 300  # as the shipped classifier's command


def held_out_cases(model, replicates: int, crop_replicates: int, seed: int) -> dict[str, list[dict]]:
    """Copies of the held-out hosts with inserted nodules, segmented once: ``{set: [case]}``."""
    sets = {}
    for name, host, count, first in (
        ("ct64", ct64_host, replicates, seed),
        ("crop_b", crop_b_host, crop_replicates, seed + 2000),
    ):
        volume, lung, real = host()
        cases = []
        for replicate in range(count):
            case = insert_nodules(
                f"{name}_{replicate:02d}", volume, lung, 3, first + replicate, existing=real
            )
            result = segment_volume(case.volume, model, threads=2)
            cases.append(
                {
                    "name": case.name,
                    "grid": result.model_grid,
                    "lungs": lung_region(result),
                    "volume": case.volume,
                    "nodules": case.nodules,
                }
            )
        sets[name] = cases
    return sets


def froc_of(scorer, cases: list[dict]) -> dict:
    """Sensitivity at 2 FP/scan and the CPM of ``scorer`` on ``cases``."""
    predictions, references = {}, {}
    for case in cases:
        detection = detect_nodules(case["grid"], case["lungs"], case["volume"], scorer, threshold=0.001)
        predictions[case["name"]] = [
            PredictedFinding(tuple(f.measurement.center), f.score) for f in detection.findings
        ]
        references[case["name"]] = case["nodules"]
    result = compute_froc(predictions, references).to_json()
    return {"sensitivity_at_2_fp": result["sensitivity_at_fp_per_scan"]["2"], "cpm": result["cpm"]}


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--cache", required=True, help="patch npz of classifier_training (collected when absent)"
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="training seeds")
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--replicates", type=int, default=10, help="ct-64 copies")
    parser.add_argument("--crop-replicates", type=int, default=6, help="chest crop b copies")
    parser.add_argument(
        "--seed", type=int, default=DIAGNOSIS_SEED, help="first nodule seed of the held-out copies"
    )
    parser.add_argument("--json", default=str(RESULTS / "classifier_seed_spread.json"))
    args = parser.parse_args()
    torch.set_num_threads(2)
    model = load_model(resolve_model(None), "cpu")
    cache = Path(args.cache)
    if not cache.is_file():
        collected, scans = collect(model, TRAINING_COPIES, NODULES_PER_COPY, MAX_CANDIDATES)
        patches, labels, scan_ids = collected.arrays()
        np.savez(cache, patches=patches, labels=labels, scans=scan_ids, scan_records=json.dumps(scans))
    stored = np.load(cache, allow_pickle=False)
    patches, labels = stored["patches"], stored["labels"]
    shipped = scorer_for_model(None)
    sets = held_out_cases(model, args.replicates, args.crop_replicates, args.seed)
    rows = [{"network": "shipped"} | {name: froc_of(shipped, cases) for name, cases in sets.items()}]
    print(rows[-1], flush=True)
    networks = []
    for seed in args.seeds:
        started = time.perf_counter()
        networks.append(train(patches, labels, args.steps, seed=seed, log=lambda *a, **k: None))
        scorer = NoduleScorer(networks[-1], shipped.slope, shipped.intercept, shipped.rank_weight)
        rows.append(
            {"network": f"seed {seed}", "training_s": round(time.perf_counter() - started, 1)}
            | {name: froc_of(scorer, cases) for name, cases in sets.items()}
        )
        print(rows[-1], flush=True)
    ensemble = NoduleScorer(
        NoduleEnsemble.of(networks), shipped.slope, shipped.intercept, shipped.rank_weight
    )
    rows.append(
        {"network": "all seeds, logits averaged"}
        | {name: froc_of(ensemble, cases) for name, cases in sets.items()}
    )
    print(f"\n{'network':28s} " + " ".join(f"{name + ' sens@2 / CPM':>22s}" for name in sets))
    for row in rows:
        print(
            f"{row['network']:28s} "
            + " ".join(f"{row[n]['sensitivity_at_2_fp']:10.2f} / {row[n]['cpm']:.3f}" for n in sets)
        )
    Path(args.json).write_text(
        json.dumps(
            {
                "cache": str(cache),
                "steps": args.steps,
                "nodule_seed": args.seed,
                "copies": {name: len(cases) for name, cases in sets.items()},
                "fusion_and_calibration": "the shipped card's, for every network",
                "rows": rows,
                "machine": machine_record(2),
            },
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
