"""Synthetic solid masses (20-40 mm, lobulated) inserted into the lungs of held-out hosts.

For each host and seed of a fixed seed set, inserts masses deep enough to lie wholly in the lung
(placement: isolated; juxta-pleural, paravertebral and hilar placements are not in this set), runs
segmentation + detection once at the default threshold, and reports per mass whether one finding
overlaps it, that finding's Dice against the inserted mask, and the share of the finding's voxels
that lie outside the host's lungs and the mass (reaching into the chest wall or mediastinum).
Writes lab/results/synthetic_masses.json.

    .venv/bin/python lab/experiments/synthetic_masses.py [--seeds 0 1 2] [--per-scan 2]
"""

from __future__ import annotations

import argparse
import json
import statistics

import numpy as np
from lab_setup import RESULTS, SHARED_DATA  # first: puts the engine on sys.path
from MedSegAILib.detection.pipeline import segment_and_detect
from MedSegAILib.inference.engine import segment_volume
from MedSegAILib.io import read_volume
from MedSegAILib.models.registry import load_model, resolve_model
from MedSegAILib.training.synthetic_nodules import NoduleSpec, insert_nodule
from scipy import ndimage

HOSTS = ("lidc_idri/LIDC-IDRI-0001/ct", "lidc_idri/LIDC-IDRI-0005/ct")  # test hosts, never trained on
DIAMETERS_MM = (20.0, 40.0)
LUNGS = (1, 2)


def mass_specs(lung: np.ndarray, spacing, count: int, rng: np.random.Generator) -> list[NoduleSpec]:
    """``count`` solid lobulated masses wholly inside ``lung``, apart from each other."""
    depth = ndimage.distance_transform_edt(lung, sampling=np.array(spacing[::-1]))
    specs: list[NoduleSpec] = []
    for _ in range(count):
        diameter = float(rng.uniform(*DIAMETERS_MM))
        room = np.argwhere(depth >= diameter / 2 + 2.0)
        far = [
            c
            for c in room[rng.permutation(len(room))[:2000]]
            if all(np.linalg.norm((c - s.center) * spacing[::-1]) > diameter + s.diameter_mm for s in specs)
        ]
        if not far:
            continue
        centre = tuple(float(v) for v in far[0])
        specs.append(
            NoduleSpec(
                centre,
                diameter,
                "solid",
                solid_hu=float(rng.uniform(0, 50)),
                lobulation=float(rng.uniform(0.1, 0.3)),
                seed=int(rng.integers(1 << 30)),
            )
        )
    return specs


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--per-scan", type=int, default=2)
    args = parser.parse_args()
    model = load_model(resolve_model(None), "cpu")
    rows = []
    for host in HOSTS:
        path = SHARED_DATA / host
        if not path.is_dir():
            print(f"skipped {host}: absent")
            continue
        volume = read_volume(path)
        lung = np.isin(segment_volume(volume, model).labels.array, LUNGS)
        for seed in args.seeds:
            rng = np.random.default_rng(seed)
            hu, masks = volume.array.astype(np.float32), []
            for spec in mass_specs(lung, volume.spacing, args.per_scan, rng):
                hu, mask = insert_nodule(hu, spec, volume.spacing, rng)
                masks.append((spec, mask))
            _, detection = segment_and_detect(volume.with_array(hu), model)
            for spec, mask in masks:
                overlapping = [int(v) for v in np.unique(detection.labels[mask]) if v]
                found = np.isin(detection.labels, overlapping)
                dice = 2 * np.count_nonzero(found & mask) / (found.sum() + mask.sum()) if overlapping else 0.0
                outside = np.count_nonzero(found & ~mask & ~lung) / max(int(found.sum()), 1)
                rows.append(
                    {
                        "host": host,
                        "seed": seed,
                        "diameter_mm": round(spec.diameter_mm, 1),
                        "findings": len(overlapping),
                        "dice": round(float(dice), 3),
                        "outside_lung_fraction": round(float(outside), 3),
                    }
                )
                print(rows[-1])
    found = [r for r in rows if r["findings"]]
    summary = {
        "masses": len(rows),
        "sensitivity": round(len(found) / max(len(rows), 1), 3),
        "one_finding_each": sum(r["findings"] == 1 for r in found),
        "median_dice": round(statistics.median(r["dice"] for r in rows), 3) if rows else None,
        "max_outside_lung_fraction": max((r["outside_lung_fraction"] for r in found), default=None),
    }
    print(summary)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "synthetic_masses.json").write_text(
        json.dumps({"summary": summary, "masses": rows}, indent=2) + "\n"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
