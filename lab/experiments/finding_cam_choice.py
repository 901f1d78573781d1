"""How well each finding-map design points at a lesion, on development cases (not the test case).

The sanity test (Testing/explain/test_sanity_checks.py) asks that >= 60 % of the top-1 % mass
of a finding's map lies within 10 mm of a 12 mm nodule inserted into the held-out CIP ct-64.
This script chose the default method and layer WITHOUT that scan: it inserts one 12 mm solid
nodule (the training inserter, seed 0) at each of 6 random lung points >= 10 mm from the
lung border (seed 7) in 100 mm cubes of two other scans, the held-out TotalSegmentator chest
crop b and the chest series, runs the shipped segmentation and detection, and scores every
(layer, method) pair by that fraction on the finding that covers the nodule. Insertions that
detection does not report are listed and left out.

    .venv/bin/python lab/experiments/finding_cam_choice.py

Prints a table and writes lab/results/finding_cam_choice.json.
"""

from __future__ import annotations

import json

import numpy as np  # noqa: E402
from lab_setup import RESULTS, SHARED_DATA  # noqa: E402  (first: puts the engine on sys.path)
from MedSegAILib.detection.nodule_scorer import scorer_for_model  # noqa: E402
from MedSegAILib.detection.pipeline import detect_from_segmentation  # noqa: E402
from MedSegAILib.explain.finding_gradcam import FINDING_CAM_METHODS, findings_gradcam  # noqa: E402
from MedSegAILib.inference.engine import segment_volume  # noqa: E402
from MedSegAILib.io import Volume, read_volume  # noqa: E402
from MedSegAILib.models.registry import load_model, resolve_model  # noqa: E402
from MedSegAILib.training.synthetic_nodules import NoduleSpec, insert_nodule  # noqa: E402
from scipy import ndimage  # noqa: E402

DATA = SHARED_DATA
SCANS = {
    "TotalSegmentator chest crop b": DATA / "totalsegmentator" / "chest_ct_crop_b_1p5mm.nii.gz",
    "chest series": DATA / "chest_ct_dicom",
}
LAYERS = ("features.6", "features.5", "features.3")
POINTS_PER_SCAN = 6
CUBE_MM = 100.0
DIAMETER_MM = 12.0


def lesion_cubes(volume: Volume, lung: np.ndarray, rng: np.random.Generator):
    """(cube with an inserted nodule, its mask) around random deep lung points."""
    depth = ndimage.distance_transform_edt(lung, sampling=volume.spacing[::-1])
    points = np.argwhere(depth >= 10.0)
    for center in points[rng.choice(len(points), POINTS_PER_SCAN, replace=False)]:
        half = [int(round(CUBE_MM / 2 / s)) for s in volume.spacing[::-1]]
        box = tuple(slice(max(0, c - h), min(n, c + h)) for c, h, n in zip(center, half, volume.array.shape))
        cube = volume.crop(box)
        local = tuple(float(c - b.start) for c, b in zip(center, box))
        hu, mask = insert_nodule(
            cube.array,
            NoduleSpec(center=local, diameter_mm=DIAMETER_MM, kind="solid", solid_hu=40.0),
            cube.spacing,
            np.random.default_rng(0),
        )
        yield center.tolist(), cube.with_array(hu.astype(np.float32)), mask


def concentration(values: np.ndarray, lesion: np.ndarray, spacing) -> float:
    """Share of the top-1 % map mass within 10 mm of the lesion (the sanity test's measure)."""
    top = values >= np.quantile(values, 0.99)
    near = ndimage.distance_transform_edt(~lesion, sampling=spacing[::-1]) <= 10.0
    return float(values[top & near].sum() / max(values[top].sum(), 1e-12))


def main() -> int:
    if not all(path.exists() for path in SCANS.values()):
        print(f"skipped: needs {', '.join(str(p) for p in SCANS.values())}")
        return 0
    model = load_model(resolve_model(None), "cpu")
    scorer = scorer_for_model(model.card)
    lungs = [model.card.label("left lung").value, model.card.label("right lung").value]
    variants = [(layer, method) for layer in LAYERS for method in FINDING_CAM_METHODS]
    cases, missed = [], []
    for name, path in SCANS.items():
        volume = read_volume(path)
        lung = np.isin(segment_volume(volume, model).labels.array, lungs)
        for center, cube, lesion in lesion_cubes(volume, lung, np.random.default_rng(7)):
            result = segment_volume(cube, model)
            detection = detect_from_segmentation(result, cube, scorer=scorer, card=model.card)
            hits = [f for f in detection.findings if (detection.labels[lesion] == f.id).any()]
            if not hits:
                missed.append({"scan": name, "center_kji": center})
                continue
            row = {"scan": name, "center_kji": center}
            for layer, method in variants:
                values, _ = findings_gradcam(result.model_grid, hits[:1], scorer.network, cube, layer, method)
                row[f"{layer} {method}"] = concentration(values, lesion, cube.spacing)
            cases.append(row)
            print(json.dumps(row), flush=True)
    summary = {}
    print(f"\n{'layer':12s} {'method':9s} {'median':>7s} {'min':>6s} {'>= 0.6':>7s}   ({len(cases)} cases)")
    for layer, method in variants:
        values = np.array([case[f"{layer} {method}"] for case in cases])
        summary[f"{layer} {method}"] = {
            "median": float(np.median(values)),
            "min": float(values.min()),
            "pass_rate": float(np.mean(values >= 0.6)),
        }
        print(
            f"{layer:12s} {method:9s} {np.median(values):7.2f} {values.min():6.2f} "
            f"{np.mean(values >= 0.6):7.2f}"
        )
    out = RESULTS / "finding_cam_choice.json"
    out.write_text(json.dumps({"cases": cases, "not_detected": missed, "summary": summary}, indent=1))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
