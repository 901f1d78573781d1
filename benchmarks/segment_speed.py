"""Segmentation speed and memory on real chest CT, and the gain over plain MONAI tiling.

1. End to end: `medsegai segment ../shared/data/chest_ct_dicom` (512 x 512 x 141, DICOM) in a
   fresh process on the CPU with 2 torch threads: wall-clock seconds (process start to exit,
   reading DICOM and writing outputs included), its CPU seconds (all threads), the stages
   from its run.json, its peak RSS; the best of --repeats runs.
   Target: <= 30 s on 2 CPU cores.
2. Memory: the same series resampled (linear) to 0.467 mm slices, 512 x 512 x 600, written as
   int16 NIfTI in a temporary folder, segmented in a fresh process; peak RSS of that process
   (os.wait4 rusage). Target: <= 3 GB.
3. Tiling: on the same preprocessed network input and the same loaded network, in this
   process, the engine's tiled inference (`predict_tiled`) against MONAI
   `sliding_window_inference(inputs, roi_size=card patch size, sw_batch_size=1, predictor)`
   with its default settings (overlap 0.25, constant blending); seconds, the ratio, and the
   fraction of voxels whose argmax class agrees between the two and with one seamless pass
   of the network over the whole volume (no tiles). Each timing is the best of --repeats runs,
   as wall seconds and as CPU seconds (the machine may be shared: CPU time is the steadier
   figure; on an idle 2-core machine wall time lies between CPU time / 2 and CPU time).

Uses the installed default model (`chest_ct`) or --model; without one it benchmarks a
random-weight network with the built-in architecture and says so ("random weights").

    .venv/bin/python benchmarks/segment_speed.py [--model NAME_OR_PATH] [--repeats N] [--skip-large]

Prints a table and writes benchmarks/results/segment_speed.json.
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
from typing import Any

import numpy as np  # noqa: E402
import SimpleITK as sitk  # noqa: E402
import torch  # noqa: E402
from bench_setup import REPO, SHARED_DATA, machine_record  # noqa: E402  (first: puts the engine on sys.path)
from MedSegAILib.errors import InputError  # noqa: E402
from MedSegAILib.inference.preprocess import prepare_input  # noqa: E402
from MedSegAILib.inference.run_record import library_versions  # noqa: E402
from MedSegAILib.inference.sliding_window import predict_tiled  # noqa: E402
from MedSegAILib.io import read_volume  # noqa: E402
from MedSegAILib.models.card import ModelCard  # noqa: E402
from MedSegAILib.models.registry import load_model, resolve_model  # noqa: E402
from monai.inferers import sliding_window_inference  # noqa: E402

RESULTS = REPO / "benchmarks" / "results" / "segment_speed.json"
CHEST_SERIES = SHARED_DATA / "chest_ct_dicom"
LARGE_SLICES = 600
THREADS = 2
TARGET_SECONDS = 30.0
TARGET_RSS_MB = 3 * 1024.0


def random_weight_model(folder: Path) -> Path:
    """A model folder with the built-in architecture and random weights (no model shipped yet)."""
    from MedSegAILib.models.networks import build_network
    from MedSegAILib.training.card_builder import NETWORK_KWARGS, NETWORK_NAME, write_model_folder

    torch.manual_seed(0)
    network = build_network(NETWORK_NAME, **NETWORK_KWARGS)
    write_model_folder(
        folder,
        network,
        training={"data": "none: random weights for benchmarking", "command": "benchmarks/segment_speed.py"},
        limits=["random weights: not a model"],
        description="random weights (benchmark only)",
    )
    return folder


def run_segment(input_path: Path, model: str, out: Path) -> dict[str, Any]:
    """`segment` in a fresh process: wall seconds, peak RSS (wait4) and its run.json."""
    command = [
        sys.executable,
        "-m",
        "MedSegAILib",
        "segment",
        str(input_path),
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
    env = dict(os.environ, PYTHONPATH=str(REPO / "MedSegAI"), OMP_NUM_THREADS=str(THREADS))
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    stderr = process.stderr.read().decode() if process.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"segment failed on {input_path}: {stderr.strip()}")
    run = json.loads((out / "run.json").read_text())
    return {
        "wall_s": round(wall, 2),
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
        "peak_rss_mb": round(usage.ru_maxrss / 1024.0, 1),
        "run_json_timings": run["timings"],
        "windows": run["options"]["windows"],
    }


def write_large_volume(folder: Path) -> tuple[Path, list[int]]:
    """The chest series resampled to 600 slices (same extent), as int16 NIfTI."""
    image = sitk.ReadImage(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(CHEST_SERIES)))
    size = list(image.GetSize())
    spacing = list(image.GetSpacing())
    spacing[2] = spacing[2] * (size[2] - 1) / (LARGE_SLICES - 1)
    size[2] = LARGE_SLICES
    large = sitk.Resample(
        image,
        size,
        sitk.Transform(),
        sitk.sitkLinear,
        image.GetOrigin(),
        spacing,
        image.GetDirection(),
        -1024,
        sitk.sitkInt16,
    )
    path = folder / "chest_600.nii.gz"
    sitk.WriteImage(large, str(path), useCompression=False)
    return path, size


def best_of(repeats: int, function) -> tuple[float, float, Any]:
    """The best wall seconds and CPU seconds (all threads) of ``repeats`` runs, and a result."""
    best_wall, best_cpu, result = float("inf"), float("inf"), None
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        result = function()
        best_wall, best_cpu = (
            min(best_wall, time.perf_counter() - wall),
            min(best_cpu, time.process_time() - cpu),
        )
    return best_wall, best_cpu, result


def compare_tiling(card: ModelCard, repeats: int) -> dict[str, Any]:
    """Engine tiling vs MONAI default sliding window on the same input and network."""
    model = load_model(card, "cpu")
    network, divisor = model.network, int(getattr(model.network, "divisor", 1))
    prepared = prepare_input(read_volume(CHEST_SERIES), card, divisor=divisor)
    shape = prepared.model_grid.array.shape
    torch.set_num_threads(THREADS)

    def engine():
        return predict_tiled(network, prepared.network_input, shape, model.device, divisor=divisor)

    def monai():
        with torch.inference_mode():
            inputs = torch.from_numpy(prepared.network_input)[None, None]
            logits = sliding_window_inference(
                inputs, roi_size=card.patch_size, sw_batch_size=1, predictor=network
            )
            return torch.softmax(logits, dim=1)[0, :, : shape[0], : shape[1], : shape[2]].numpy()

    engine_s, engine_cpu, tiled = best_of(repeats, engine)
    monai_s, monai_cpu, reference = best_of(repeats, monai)
    engine_classes, monai_classes = np.argmax(tiled.probabilities, axis=0), np.argmax(reference, axis=0)
    whole = predict_tiled(
        network,
        prepared.network_input,
        shape,
        model.device,
        divisor=divisor,
        max_tile_voxels=10**12,
        margin=0,
    )
    whole_classes = np.argmax(whole.probabilities, axis=0)
    return {
        "network_input_shape_zyx": list(prepared.network_input.shape),
        "model_grid_shape_zyx": list(shape),
        "engine_s": round(engine_s, 2),
        "engine_cpu_s": round(engine_cpu, 2),
        "engine_windows": tiled.windows,
        "monai_default_s": round(monai_s, 2),
        "monai_default_cpu_s": round(monai_cpu, 2),
        "monai_roi_size_zyx": list(card.patch_size),
        "speedup_vs_monai": round(monai_s / engine_s, 2),
        "cpu_time_ratio_vs_monai": round(monai_cpu / engine_cpu, 2),
        "argmax_agreement": round(float(np.mean(engine_classes == monai_classes)), 5),
        "engine_agreement_with_one_whole_volume_pass": round(
            float(np.mean(engine_classes == whole_classes)), 5
        ),
        "monai_agreement_with_one_whole_volume_pass": round(
            float(np.mean(monai_classes == whole_classes)), 5
        ),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--model", default=None, help="model name or folder (default: the built-in chest_ct model)"
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=1,
        help="runs of the chest segment and of each tiling timing; the best is kept",
    )
    parser.add_argument("--skip-large", action="store_true", help="skip the 512x512x600 memory run")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if not CHEST_SERIES.is_dir():
        print(f"needs {CHEST_SERIES} (../shared/data/chest_ct_dicom)", file=sys.stderr)
        return 2

    with tempfile.TemporaryDirectory(prefix="medsegai-bench-") as temporary:
        scratch = Path(temporary)
        try:
            card = resolve_model(args.model)
            weights = "trained"
        except InputError:
            if args.model is not None:
                raise
            card = resolve_model(str(random_weight_model(scratch / "random_model")))
            weights = "random weights (no shipped model yet)"
        print(
            f"model {card.name} {card.version} ({weights}), "
            f"spacing {card.spacing} mm, patch {card.patch_size}",
            flush=True,
        )
        load_before = os.getloadavg()

        runs = [
            run_segment(CHEST_SERIES, str(card.folder), scratch / f"out_chest_{index}")
            for index in range(args.repeats)
        ]
        chest = min(runs, key=lambda run: run["wall_s"])
        large = None
        if not args.skip_large:
            large_path, large_size = write_large_volume(scratch)
            large = run_segment(large_path, str(card.folder), scratch / "out_large")
            large["size_xyz"] = large_size
        tiling = compare_tiling(card, args.repeats)

    results = {
        "model": {
            "name": card.name,
            "version": card.version,
            "weights": weights,
            "sha256": card.weights["sha256"],
            "spacing_mm": list(card.spacing),
            "network": card.network,
        },
        "machine": machine_record(THREADS) | {"load_average_at_start": [round(x, 2) for x in load_before]},
        "versions": library_versions(),
        "segment_chest_512x512x141": {
            **chest,
            "target_s": TARGET_SECONDS,
            "meets_target": chest["wall_s"] <= TARGET_SECONDS,
        },
        "segment_512x512x600_memory": (
            {**large, "target_mb": TARGET_RSS_MB, "meets_target": large["peak_rss_mb"] <= TARGET_RSS_MB}
            if large
            else None
        ),
        "tiling_vs_monai_default": tiling,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print_table(results)
    print(f"wrote {args.out}")
    return 0


def print_table(results: dict[str, Any]) -> None:
    chest, large, tiling = (
        results["segment_chest_512x512x141"],
        results["segment_512x512x600_memory"],
        results["tiling_vs_monai_default"],
    )
    rows = [("measure", "value", "target")]
    rows.append(("segment 512x512x141, wall (s)", f"{chest['wall_s']:.1f}", f"<= {TARGET_SECONDS:.0f}"))
    stages = ", ".join(f"{k} {v:.1f}" for k, v in chest["run_json_timings"].items())
    rows.append(("  stages (s)", stages, ""))
    rows.append(("  CPU time, all threads (s)", f"{chest['cpu_s']:.1f}", ""))
    rows.append(("  peak RSS (MB)", f"{chest['peak_rss_mb']:.0f}", ""))
    if large:
        rows.append(
            ("segment 512x512x600, peak RSS (MB)", f"{large['peak_rss_mb']:.0f}", f"<= {TARGET_RSS_MB:.0f}")
        )
        rows.append(("  wall (s)", f"{large['wall_s']:.1f}", ""))
    rows.append(
        (
            "tiled inference, engine: wall / CPU (s)",
            f"{tiling['engine_s']:.1f} / {tiling['engine_cpu_s']:.1f} ({tiling['engine_windows']} windows)",
            "",
        )
    )
    rows.append(
        (
            "tiled inference, MONAI default: wall / CPU (s)",
            f"{tiling['monai_default_s']:.1f} / {tiling['monai_default_cpu_s']:.1f}",
            "",
        )
    )
    rows.append(
        (
            "  speed-up vs MONAI: wall / CPU",
            f"{tiling['speedup_vs_monai']:.2f}x / {tiling['cpu_time_ratio_vs_monai']:.2f}x",
            "",
        )
    )
    rows.append(("  argmax agreement engine / MONAI", f"{100 * tiling['argmax_agreement']:.2f}%", ""))
    rows.append(
        (
            "  agreement with one whole-volume pass: engine / MONAI",
            f"{100 * tiling['engine_agreement_with_one_whole_volume_pass']:.2f}% / "
            f"{100 * tiling['monai_agreement_with_one_whole_volume_pass']:.2f}%",
            "",
        )
    )
    widths = [max(len(row[c]) for row in rows) for c in range(3)]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)))
    print(
        f"model weights: {results['model']['weights']}; "
        f"load average at start: {results['machine']['load_average_at_start']}"
    )


if __name__ == "__main__":
    sys.exit(main())
