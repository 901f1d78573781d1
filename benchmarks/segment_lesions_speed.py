"""What the lesions cost `segment`: the whole job with and without them, in one process.

Runs the `segment` job (read, load, segment, write) on the 512x512x141 chest CT series with
`--no-detect` (the network's segments only, the baseline) and with the default lesions (the
findings of the same network pass as the `lung nodule` segment, volumes.json, findings), in
alternation, and reports the ratio of the medians (goal <= 1.25). Prints a table and writes
benchmarks/results/segment_lesions_speed.json.

    .venv/bin/python benchmarks/segment_lesions_speed.py [--repeats N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch
from bench_setup import REPO, SHARED_DATA, machine_record  # first: puts the engine on sys.path
from MedSegAILib.jobs import JobRequest, run_job

DATA = SHARED_DATA / "chest_ct_dicom"
THREADS = 2
GOAL = 1.25


def timed_job(detect: bool, scratch: Path, run: int) -> tuple[float, int | None]:
    """Seconds for one `segment` job, and its number of findings."""
    request = JobRequest(
        command="segment",
        input=str(DATA),
        output=str(scratch / f"{'lesions' if detect else 'baseline'}_{run}"),
        device="cpu",
        threads=THREADS,
        detect=detect,
    )
    started = time.perf_counter()
    result = run_job(request)
    return time.perf_counter() - started, result.findings


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", default=str(REPO / "benchmarks" / "results" / "segment_lesions_speed.json"))
    args = parser.parse_args()
    if not DATA.is_dir():
        print(f"skipped: {DATA} is absent")
        return 0
    torch.set_num_threads(THREADS)
    times: dict[str, list[float]] = {"baseline": [], "lesions": []}
    findings = None
    with tempfile.TemporaryDirectory(prefix="medsegai-bench-") as scratch:
        timed_job(False, Path(scratch), -1)  # warm-up: file cache, torch kernels
        for run in range(args.repeats):
            times["baseline"].append(timed_job(False, Path(scratch), run)[0])
            seconds, findings = timed_job(True, Path(scratch), run)
            times["lesions"].append(seconds)
    medians = {name: statistics.median(values) for name, values in times.items()}
    ratio = medians["lesions"] / medians["baseline"]
    print(f"{'segment job':<28}{'median s':>10}{'runs':>30}")
    for name, values in times.items():
        print(f"{name:<28}{medians[name]:>10.2f}{'  '.join(f'{v:.2f}' for v in values):>30}")
    print(f"ratio lesions / baseline: {ratio:.3f} (goal <= {GOAL}); findings: {findings}")
    record = {
        "benchmark": "segment with lesions vs --no-detect, chest_ct_dicom 512x512x141, CPU",
        "threads": THREADS,
        "seconds": times,
        "median_seconds": medians,
        "ratio": round(ratio, 3),
        "goal_ratio": GOAL,
        "findings": findings,
        "machine": machine_record(),
    }
    Path(args.json).write_text(json.dumps(record, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
