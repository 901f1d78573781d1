"""What refining the lung borders on the input grid costs (inference/border_refinement.py).

1. ``segment_volume`` on ``../shared/data/chest_ct_dicom`` (512 x 512 x 141) with and without
   the refinement (``refine_borders``), in this process, on the CPU with 2 torch threads, runs
   alternating after one warm-up: the best wall and CPU seconds of --repeats runs each and
   their ratio; the seconds spent in the refinement inside the refined runs (its call timed);
   the peak of numpy's traced allocations (tracemalloc) of each variant, in an untimed run.
2. Peak memory of the whole path, with and without: ``read_volume`` + ``load_model`` +
   ``segment_volume`` in a fresh process each (peak RSS from os.wait4), on the chest series
   and on the series resampled to 512 x 512 x 600 (0.467 mm slices, as ``segment_speed.py``
   makes it; target <= 3 GB).
3. The refinement alone on the labels of both volumes: seconds and traced peak memory (its
   extra memory: the step allocates nothing else of size).

    .venv/bin/python benchmarks/border_refinement.py [--repeats N] [--skip-large]

Prints a table and writes benchmarks/results/border_refinement.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np  # noqa: E402
import torch  # noqa: E402
from bench_setup import REPO, SHARED_DATA, machine_record  # noqa: E402  (first: puts the engine on sys.path)
from MedSegAILib.inference import engine  # noqa: E402
from MedSegAILib.inference.border_refinement import (  # noqa: E402
    band_radius,
    refine_label_borders,
    refined_label_values,
)
from MedSegAILib.inference.run_record import library_versions  # noqa: E402
from MedSegAILib.io import Volume, read_volume  # noqa: E402
from MedSegAILib.models.registry import load_model, resolve_model  # noqa: E402
from segment_speed import write_large_volume  # noqa: E402

RESULTS = REPO / "benchmarks" / "results" / "border_refinement.json"
CHEST_SERIES = SHARED_DATA / "chest_ct_dicom"
THREADS = 2
TARGET_RSS_MB = 3 * 1024.0
FRESH_PROCESS = """
import json, sys, time
import torch
torch.set_num_threads({threads})
from MedSegAILib.inference.engine import segment_volume
from MedSegAILib.io import read_volume
from MedSegAILib.models.registry import load_model, resolve_model
volume = read_volume(sys.argv[1])
model = load_model(resolve_model(None), "cpu")
started = time.perf_counter()
result = segment_volume(volume, model, refine_borders=sys.argv[2] == "1")
print(json.dumps({{"segment_volume_s": time.perf_counter() - started, "timings": result.timings}}))
"""


def traced_peak_mb(function: Callable[[], Any]) -> float:
    """The peak of the allocations tracemalloc sees (numpy arrays, Python objects) while running."""
    tracemalloc.start()
    try:
        function()
        return round(tracemalloc.get_traced_memory()[1] / 2**20, 1)
    finally:
        tracemalloc.stop()


def timed(function: Callable[[], Any]) -> tuple[float, float]:
    """Wall and CPU seconds (all threads) of one run."""
    wall, cpu = time.perf_counter(), time.process_time()
    function()
    return time.perf_counter() - wall, time.process_time() - cpu


class RefinementClock:
    """Wraps the engine's call of the refinement to time it inside ``segment_volume``."""

    def __init__(self) -> None:
        self.seconds: list[float] = []
        self.original = engine.refine_label_borders

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return self.original(*args, **kwargs)
        finally:
            self.seconds.append(time.perf_counter() - started)


def fresh_process_peak(path: Path, refine: bool) -> dict[str, Any]:
    """``segment_volume`` of ``path`` in a fresh process: its peak RSS (wait4) and seconds."""
    env = dict(os.environ, PYTHONPATH=str(REPO / "MedSegAI"), OMP_NUM_THREADS=str(THREADS))
    command = [sys.executable, "-c", FRESH_PROCESS.format(threads=THREADS), str(path), "1" if refine else "0"]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    output = process.stdout.read().decode() if process.stdout else ""
    if os.waitstatus_to_exitcode(status) != 0:
        stderr = process.stderr.read().decode() if process.stderr else ""
        raise RuntimeError(f"segment_volume failed on {path}: {stderr.strip()}")
    run = json.loads(output.strip().splitlines()[-1])
    return {
        "peak_rss_mb": round(usage.ru_maxrss / 1024.0, 1),
        "segment_volume_s": round(run["segment_volume_s"], 2),
        "postprocess_s": round(run["timings"]["postprocess"], 2),
    }


def fresh_process_pair(path: Path) -> dict[str, Any]:
    """Peak RSS of the whole path without and with the refinement, and their ratio."""
    plain, refined = fresh_process_peak(path, False), fresh_process_peak(path, True)
    return {
        "without_refinement": plain,
        "with_refinement": refined,
        "peak_rss_ratio": round(refined["peak_rss_mb"] / plain["peak_rss_mb"], 3),
    }


def refine_alone(volume: Volume, labels: np.ndarray, model_spacing, values, repeats: int) -> dict[str, Any]:
    """The refinement on a copy of ``labels``: best seconds, traced peak memory, voxels changed."""
    radius = band_radius(volume.spacing, model_spacing)
    copies = [labels.copy() for _ in range(repeats)]
    best = min(
        timed(lambda work=work: refine_label_borders(work, volume.array, values, radius)) for work in copies
    )
    work = labels.copy()
    holder: list[Any] = []
    traced = traced_peak_mb(lambda: holder.append(refine_label_borders(work, volume.array, values, radius)))
    return {
        "shape_zyx": list(labels.shape),
        "spacing_xyz": [round(s, 4) for s in volume.spacing],
        "band_radius_kji": list(radius),
        "wall_s": round(best[0], 3),
        "cpu_s": round(best[1], 3),
        "traced_peak_mb": traced,
        "voxels_added": holder[0].added,
        "voxels_removed": holder[0].removed,
    }


def compare_segment(volume: Volume, model, repeats: int) -> dict[str, Any]:
    """``segment_volume`` with and without the refinement, alternating, in this process."""
    clock = RefinementClock()
    engine.refine_label_borders = clock
    try:
        engine.segment_volume(volume, model)  # warm-up
        runs: dict[bool, list[tuple[float, float]]] = {False: [], True: []}
        for _ in range(repeats):
            for refine in (False, True):
                runs[refine].append(
                    timed(lambda refine=refine: engine.segment_volume(volume, model, refine_borders=refine))
                )
    finally:
        engine.refine_label_borders = clock.original
    best = {refine: (min(w for w, _ in times), min(c for _, c in times)) for refine, times in runs.items()}
    results, traced = {}, {}
    for refine in (False, True):
        holder: list[Any] = []
        traced[refine] = traced_peak_mb(
            lambda refine=refine, holder=holder: holder.append(
                engine.segment_volume(volume, model, refine_borders=refine)
            )
        )
        results[refine] = holder[0]
    record: dict[str, Any] = {"shape_zyx": list(volume.array.shape), "spacing_xyz": list(volume.spacing)}
    for refine, name in ((False, "without_refinement"), (True, "with_refinement")):
        record[name] = {
            "wall_s": round(best[refine][0], 2),
            "cpu_s": round(best[refine][1], 2),
            "traced_peak_mb": traced[refine],
            "timings": {k: round(v, 3) for k, v in results[refine].timings.items()},
        }
    record["wall_ratio"] = round(best[True][0] / best[False][0], 3)
    record["cpu_ratio"] = round(best[True][1] / best[False][1], 3)
    record["refinement_in_segment_volume_s"] = round(min(clock.seconds), 3)
    record["refinement_share_of_segment_volume"] = round(min(clock.seconds) / best[True][0], 3)
    record["traced_peak_ratio"] = round(traced[True] / traced[False], 3)
    plain, refined = results[False], results[True]
    voxel_ml = float(np.prod(volume.spacing)) / 1000.0
    record["volumes_ml"] = {
        label.name: [
            round(float(np.count_nonzero(r.labels.array == label.value)) * voxel_ml, 1)
            for r in (plain, refined)
        ]
        for label in model.card.labels
    }
    record["volumes_note"] = "[without, with] refinement"
    record["labels"] = plain.labels.array
    record["model_spacing"] = plain.model_grid.spacing
    return record


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=5, help="timed runs of each variant (best kept)")
    parser.add_argument("--skip-large", action="store_true", help="skip the 512x512x600 runs")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if not CHEST_SERIES.is_dir():
        print(f"needs {CHEST_SERIES} (../shared/data/chest_ct_dicom)", file=sys.stderr)
        return 2
    torch.set_num_threads(THREADS)
    card = resolve_model(None)
    model = load_model(card, "cpu")
    values = refined_label_values(card)
    load_before = os.getloadavg()
    chest = read_volume(CHEST_SERIES)
    segment = compare_segment(chest, model, args.repeats)
    chest_labels, model_spacing = segment.pop("labels"), segment.pop("model_spacing")
    alone = refine_alone(chest, chest_labels, model_spacing, values, args.repeats)
    memory = {"chest_512x512x141": fresh_process_pair(CHEST_SERIES)}
    large = None
    if not args.skip_large:
        with tempfile.TemporaryDirectory(prefix="medsegai-bench-") as temporary:
            path, _ = write_large_volume(Path(temporary))
            volume = read_volume(path)
            labels = engine.segment_volume(volume, model, refine_borders=False).labels.array
            large = refine_alone(volume, labels, model_spacing, values, 1)
            del volume, labels
            memory["large_512x512x600"] = fresh_process_pair(path)
            memory["large_512x512x600"]["target_mb"] = TARGET_RSS_MB
    results = {
        "model": {"name": card.name, "version": card.version, "spacing_mm": list(card.spacing)},
        "refined_labels": [label.name for label in card.labels if label.value in values],
        "machine": machine_record(THREADS) | {"load_average_at_start": [round(x, 2) for x in load_before]},
        "versions": library_versions(),
        "segment_volume_chest_512x512x141": segment,
        "peak_rss_fresh_process": memory,
        "refinement_alone_chest_512x512x141": alone,
        "refinement_alone_512x512x600": large,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print_table(results)
    print(f"wrote {args.out}")
    return 0


def print_table(results: dict[str, Any]) -> None:
    segment, memory = results["segment_volume_chest_512x512x141"], results["peak_rss_fresh_process"]
    plain, refined = segment["without_refinement"], segment["with_refinement"]
    rows = [("measure", "without", "with", "ratio")]
    for label, key in (("segment_volume 512x512x141, wall (s)", "wall_s"), ("  CPU (s)", "cpu_s")):
        ratio = segment["wall_ratio" if key == "wall_s" else "cpu_ratio"]
        rows.append((label, f"{plain[key]:.2f}", f"{refined[key]:.2f}", f"{ratio:.3f}"))
    rows.append(
        (
            "  of which the refinement (s)",
            "",
            f"{segment['refinement_in_segment_volume_s']:.2f}",
            f"{100 * segment['refinement_share_of_segment_volume']:.1f}%",
        )
    )
    rows.append(
        (
            "  peak traced numpy memory (MB)",
            f"{plain['traced_peak_mb']:.0f}",
            f"{refined['traced_peak_mb']:.0f}",
            f"{segment['traced_peak_ratio']:.3f}",
        )
    )
    for name, (before, after) in segment["volumes_ml"].items():
        rows.append((f"  {name} (mL)", f"{before:.1f}", f"{after:.1f}", ""))
    for name, pair in memory.items():
        rows.append(
            (
                f"peak RSS, fresh process, {name.split('_', 1)[1]} (MB)",
                f"{pair['without_refinement']['peak_rss_mb']:.0f}",
                f"{pair['with_refinement']['peak_rss_mb']:.0f}",
                f"{pair['peak_rss_ratio']:.3f}",
            )
        )
    for key in ("refinement_alone_chest_512x512x141", "refinement_alone_512x512x600"):
        step = results[key]
        if step:
            shape = "x".join(str(n) for n in step["shape_zyx"][::-1])
            rows.append(
                (
                    f"refinement alone {shape}: s / traced MB",
                    "",
                    f"{step['wall_s']:.2f} / {step['traced_peak_mb']:.0f}",
                    "",
                )
            )
    widths = [max(len(row[c]) for row in rows) for c in range(4)]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)))
    print(f"load average at start: {results['machine']['load_average_at_start']}")


if __name__ == "__main__":
    sys.exit(main())
