"""What explanations cost: `segment` plain vs with `--uncertainty N` vs with `--gradcam "lung nodule"`.

All runs go through the real command (`medsegai segment`, in this process, so that they
share the same warm interpreter, imports and file cache) on the chest CT series
(../shared/data/chest_ct_dicom, 512 x 512 x 141), on the CPU with 2 torch threads. One
unrecorded warm-up run first; then the configurations run interleaved, --repeats times
each, and each keeps its best wall-clock time (the machine is shared, so the best run is
the least disturbed one). Ratios are against plain `segment`; target <= 1.5. Each run also
gets its ratio to the plain run of the same repeat (a check on load that changes between
repeats).

    .venv/bin/python benchmarks/explain_cost.py [--model NAME_OR_PATH] [--repeats N] [--samples 10]

The acceptance is `segment --uncertainty 10`; other sample counts can be added. The
one-minute load average is recorded before every run (the machine is shared: compare
ratios from the same run only).

Without a shipped model it measures a random-weight network with the built-in
architecture and says so: a random network is unsure everywhere, so the sampled box is the
whole body crop (the worst case for the cost of uncertainty).

Prints a table and writes benchmarks/results/explain_cost.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch  # noqa: E402
from bench_setup import REPO, SHARED_DATA, machine_record  # noqa: E402  (first: puts the engine on sys.path)
from MedSegAILib.cli.main import main as medsegai  # noqa: E402
from MedSegAILib.errors import InputError  # noqa: E402
from MedSegAILib.inference.run_record import library_versions  # noqa: E402
from MedSegAILib.models.registry import resolve_model  # noqa: E402

RESULTS = REPO / "benchmarks" / "results" / "explain_cost.json"
CHEST_SERIES = SHARED_DATA / "chest_ct_dicom"
THREADS = 2
TARGET_RATIO = 1.5
GRADCAM_SEGMENT = "lung nodule"


def random_weight_model(folder: Path) -> Path:
    """A model folder with the built-in architecture and random weights (no shipped model)."""
    from MedSegAILib.models.networks import build_network
    from MedSegAILib.training.card_builder import NETWORK_KWARGS, NETWORK_NAME, write_model_folder

    torch.manual_seed(0)
    write_model_folder(
        folder,
        build_network(NETWORK_NAME, **NETWORK_KWARGS),
        training={"data": "none: random weights for benchmarking", "command": "benchmarks/explain_cost.py"},
        limits=["random weights: not a model"],
        description="random weights (benchmark only)",
    )
    return folder


def run_segment(model: str, out: Path, extra: list[str]) -> dict[str, Any]:
    """One `segment` run in this process: wall seconds and the stages of its run.json."""
    started = time.perf_counter()
    code = medsegai(
        [
            "segment",
            str(CHEST_SERIES),
            "-o",
            str(out),
            "--model",
            model,
            "--device",
            "cpu",
            "--threads",
            str(THREADS),
            "--quiet",
        ]
        + extra
    )
    wall = time.perf_counter() - started
    if code != 0:
        raise RuntimeError(f"segment {' '.join(extra)} failed with exit code {code}")
    record = json.loads((out / "run.json").read_text())
    return {"wall_s": round(wall, 2), "timings": record["timings"]}


def configurations(samples: list[int]) -> dict[str, list[str]]:
    """The runs to compare, by name."""
    runs = {"plain": []}
    for n in samples:
        runs[f"uncertainty_{n}"] = ["--uncertainty", str(n)]
    runs["gradcam_lung_nodule"] = ["--gradcam", GRADCAM_SEGMENT]
    return runs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--model", default=None, help="model name or folder (default: the built-in chest_ct model)"
    )
    parser.add_argument("--repeats", type=int, default=3, help="runs per configuration; the best is kept")
    parser.add_argument(
        "--samples", type=int, nargs="+", default=[10], help="--uncertainty sample counts to time"
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if not CHEST_SERIES.is_dir():
        print(f"needs {CHEST_SERIES} (../shared/data/chest_ct_dicom)", file=sys.stderr)
        return 2
    torch.set_num_threads(THREADS)

    with tempfile.TemporaryDirectory(prefix="medsegai-explain-bench-") as temporary:
        scratch = Path(temporary)
        try:
            card = resolve_model(args.model)
            weights = "trained"
        except InputError:
            if args.model is not None:
                raise
            card = resolve_model(str(random_weight_model(scratch / "random_model")))
            weights = "random weights (no shipped model yet)"
        model = str(card.folder)
        print(f"model {card.name} {card.version} ({weights}); {CHEST_SERIES}", flush=True)
        load_before = os.getloadavg()
        run_segment(model, scratch / "warmup", [])
        runs = configurations(args.samples)
        best: dict[str, dict[str, Any]] = {}
        all_walls: dict[str, list[float]] = {name: [] for name in runs}
        all_loads: dict[str, list[float]] = {name: [] for name in runs}
        for repeat in range(args.repeats):
            for name, extra in runs.items():
                all_loads[name].append(round(os.getloadavg()[0], 2))
                result = run_segment(model, scratch / f"{name}_{repeat}", extra)
                all_walls[name].append(result["wall_s"])
                print(
                    f"  {name:<22} run {repeat + 1}: {result['wall_s']:.1f} s (load {all_loads[name][-1]})",
                    flush=True,
                )
                if name not in best or result["wall_s"] < best[name]["wall_s"]:
                    best[name] = result
        load_after = os.getloadavg()

    plain = best["plain"]["wall_s"]
    table = {
        name: {
            **result,
            "all_wall_s": all_walls[name],
            "load_1min_before_each": all_loads[name],
            "ratio_to_plain_same_repeat": [
                round(wall / base, 3) for wall, base in zip(all_walls[name], all_walls["plain"])
            ],
            "ratio_to_plain": round(result["wall_s"] / plain, 3),
            "meets_target": name == "plain" or result["wall_s"] / plain <= TARGET_RATIO,
        }
        for name, result in best.items()
    }
    results = {
        "model": {
            "name": card.name,
            "version": card.version,
            "weights": weights,
            "sha256": card.weights["sha256"],
        },
        "input": "../shared/data/chest_ct_dicom (512 x 512 x 141 DICOM)",
        "method": (
            "medsegai segment in one process, CPU, 2 torch threads, warm-up run first, "
            "configurations interleaved, best of repeats"
        ),
        "target_ratio": TARGET_RATIO,
        "machine": machine_record(THREADS)
        | {
            "load_average_at_start": [round(x, 2) for x in load_before],
            "load_average_at_end": [round(x, 2) for x in load_after],
        },
        "versions": library_versions(),
        "runs": table,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print_table(results)
    print(f"wrote {args.out}")
    return 0


def print_table(results: dict[str, Any]) -> None:
    """The runs as a text table."""
    print(
        f"\n{'run':<24}{'wall s':>8}{'ratio':>8}  {'inference':>9}  "
        f"{'uncertainty':>11}  {'gradcam':>7}  target <= {TARGET_RATIO}"
    )
    for name, run in results["runs"].items():
        timings = run["timings"]
        print(
            f"{name:<24}{run['wall_s']:>8.1f}{run['ratio_to_plain']:>8.2f}  "
            f"{timings.get('inference', 0):>9.1f}  "
            f"{timings.get('uncertainty', 0):>11.1f}  {timings.get('gradcam', 0):>7.1f}  "
            f"{'ok' if run['meets_target'] else 'MISSED'}"
        )


if __name__ == "__main__":
    raise SystemExit(main())
