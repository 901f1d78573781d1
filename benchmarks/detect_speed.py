"""Speed of nodule detection on the 512x512x141 chest CT series (2 CPU threads).

Measures (1) the wall time of the whole `medsegai detect` command (read, load, segment,
detect, write; goal <= 30 s on 2 cores) and (2) in one process, what detection adds after
`segment_volume` has run (goal <= 20 % of the segmentation time). Prints a table and writes
benchmarks/results/detect_speed.json.

    .venv/bin/python benchmarks/detect_speed.py [--model NAME_OR_PATH] [--repeats N]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch  # noqa: E402
from bench_setup import REPO, SHARED_DATA, machine_record  # noqa: E402  (first: puts the engine on sys.path)
from MedSegAILib.detection.pipeline import detect_from_segmentation  # noqa: E402
from MedSegAILib.inference.engine import segment_volume  # noqa: E402
from MedSegAILib.io import read_volume  # noqa: E402
from MedSegAILib.models.registry import load_model, resolve_model  # noqa: E402

DATA = SHARED_DATA / "chest_ct_dicom"
THREADS = 2


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default=None)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--json", default=str(REPO / "benchmarks" / "results" / "detect_speed.json"))
    args = parser.parse_args()
    if not DATA.is_dir():
        print(f"skipped: {DATA} is absent")
        return 0
    torch.set_num_threads(THREADS)
    command = [
        sys.executable,
        "-m",
        "MedSegAILib",
        "detect",
        str(DATA),
        "--quiet",
        "--device",
        "cpu",
        "--threads",
        str(THREADS),
    ]
    if args.model:
        command += ["--model", args.model]
    cli_seconds = []
    for _ in range(args.repeats):
        with tempfile.TemporaryDirectory() as out:
            started = time.perf_counter()
            subprocess.run(
                command + ["-o", out], check=True, env=os.environ | {"PYTHONPATH": str(REPO / "MedSegAI")}
            )
            cli_seconds.append(time.perf_counter() - started)

    volume = read_volume(DATA)
    model = load_model(resolve_model(args.model), "cpu")
    segment_seconds, detect_seconds = [], []
    for _ in range(args.repeats):
        started = time.perf_counter()
        segmentation = segment_volume(volume, model, threads=THREADS)
        segment_seconds.append(time.perf_counter() - started)
        started = time.perf_counter()
        detection = detect_from_segmentation(segmentation, volume, card=model.card)
        detect_seconds.append(time.perf_counter() - started)
    segment_best, detect_best = min(segment_seconds), min(detect_seconds)
    overhead = detect_best / segment_best
    rows = [
        ("medsegai detect (whole command)", min(cli_seconds), "<= 30 s"),
        ("segment_volume", segment_best, ""),
        ("detection after segment_volume", detect_best, f"<= 20 % of segment ({100 * overhead:.1f} %)"),
    ]
    print(
        f"{'stage':<34} {'seconds':>8}  goal   "
        f"({volume.shape_ijk} voxels, {THREADS} threads, best of {args.repeats})"
    )
    for name, seconds, goal in rows:
        print(f"{name:<34} {seconds:8.2f}  {goal}")
    result = {
        "input": str(DATA.relative_to(REPO.parent)),
        "voxels_ijk": list(volume.shape_ijk),
        "threads": THREADS,
        "machine": machine_record(THREADS),
        "detect_command_s": round(min(cli_seconds), 2),
        "segment_s": round(segment_best, 2),
        "detect_after_segment_s": round(detect_best, 3),
        "detect_overhead_fraction": round(overhead, 4),
        "findings": len(detection.findings),
        "candidates": detection.candidates,
        "goals": {"detect_command_s": 30.0, "detect_overhead_fraction": 0.20},
    }
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
