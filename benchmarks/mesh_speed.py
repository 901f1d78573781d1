"""Mesh accuracy on analytic phantoms and end-to-end export speed against a scikit-image baseline.

1. Accuracy: sphere (r = 10 mm), ellipsoid (12 x 8 x 6 mm) and torus (12 / 4 mm), centre-sampled
   at 0.7 mm and 1.5 mm and on an oblique 0.6 x 0.7 x 0.8 mm grid; mean and 95th-percentile
   vertex distance to the analytic surface, volume error, closed/manifold. The engine's
   extractor (discrete flying edges) is compared with vtkSurfaceNets3D under the same smoothing.
2. Speed (target: the default, smoothed export at least 4x the whole-grid baseline; the
   smoother's share of the export is the time the default adds over the unsmoothed export):
   one 512 x 512 x 300 label map (two lung-sized lobulated ellipsoids and a 12 mm
   nodule) as .nii.gz; label map file in, one binary STL per label out, in this process:
   - engine: `medsegai export-stl` (main() in process), smoothing off and default;
   - baseline (the usual recipe): SimpleITK read, per label `skimage.measure.marching_cubes`
     (level 0.5) on the whole grid's mask, the same index -> LPS transform and outward
     orientation, numpy-stl binary write;
   - cropped baseline: the same, given the engine's bounding-box crop + 1 voxel padding
     (shows how much of the gain is the crop). scikit-image has no mesh smoother, so the baseline is
     always unsmoothed: the "default" row compares a smoothed engine with an unsmoothed baseline.
   Each timing is the best of --repeats runs; engine and baselines alternate within each repeat,
   so that they meet the same machine load (the 1/5/15-minute load averages are recorded).
   Process CPU seconds are recorded too: on a shared machine their ratio is the steadier figure.
   BLAS runs single-threaded (see below).

Prints tables and writes benchmarks/results/mesh_speed.json.

    .venv/bin/python benchmarks/mesh_speed.py [--repeats N]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

from bench_setup import REPO, machine_record  # noqa: E402  (first: puts the engine on sys.path)

# Single-threaded BLAS: on a busy machine OpenBLAS threads stall the baseline's (N, 3) @ (3, 3)
# transform for tens of milliseconds; this keeps contention from inflating the baseline's time.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import SimpleITK as sitk  # noqa: E402
import skimage  # noqa: E402
import vtk  # noqa: E402
from medsegai_lab import phantoms  # noqa: E402
from MedSegAILib.cli.main import main as medsegai  # noqa: E402
from MedSegAILib.io import Volume  # noqa: E402
from MedSegAILib.mesh import MeshOptions, mask_surface, measure_surface
from MedSegAILib.mesh.vtk_arrays import image_from_mask, polydata_arrays  # noqa: E402
from scipy import ndimage  # noqa: E402
from skimage.measure import marching_cubes  # noqa: E402
from stl import mesh as numpy_stl  # noqa: E402

RESULTS = REPO / "benchmarks" / "results" / "mesh_speed.json"
SHAPE_KJI = (300, 512, 512)
SPACING = (0.7, 0.7, 1.0)
TARGET_SPEEDUP = 4.0  # default (smoothed) export against the whole-grid scikit-image baseline


def oblique() -> np.ndarray:
    a, b = np.deg2rad(25.0), np.deg2rad(-15.0)
    rz = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, np.cos(b), -np.sin(b)], [0, np.sin(b), np.cos(b)]])
    return rz @ rx


def orient_outward(points: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """Reverse every triangle if the consistently wound surface encloses negative volume."""
    a, b, c = (points[triangles[:, n]] for n in range(3))
    return triangles[:, ::-1].copy() if np.einsum("ij,ij->i", a, np.cross(b, c)).sum() < 0 else triangles


def surface_nets(mask: np.ndarray, index_to_lps: np.ndarray, options: MeshOptions):
    """vtkSurfaceNets3D with the engine's smoothing and transform (for the comparison only)."""
    nets = vtk.vtkSurfaceNets3D()
    nets.SetInputData(image_from_mask(mask))
    nets.SetValue(0, 1)
    nets.SmoothingOff()
    nets.SetOutputMeshTypeToTriangles()
    nets.Update()
    surface = nets.GetOutput()
    if options.smoothing_iterations:
        smoother = vtk.vtkWindowedSincPolyDataFilter()
        smoother.SetInputData(surface)
        smoother.SetNumberOfIterations(options.smoothing_iterations)
        smoother.SetPassBand(options.passband)
        smoother.BoundarySmoothingOff()
        smoother.NonManifoldSmoothingOn()
        smoother.NormalizeCoordinatesOn()
        smoother.Update()
        surface = smoother.GetOutput()
    points, triangles = polydata_arrays(surface)
    points = points @ index_to_lps[:3, :3].T + index_to_lps[:3, 3]
    return points, orient_outward(points, triangles)


def accuracy_table() -> list[dict]:
    grids = {
        "0.7 mm": ((0.7,) * 3, None),
        "1.5 mm": ((1.5,) * 3, None),
        "oblique 0.6x0.7x0.8 mm": ((0.6, 0.7, 0.8), oblique()),
    }
    shapes = {"sphere": phantoms.sphere(10.0), "ellipsoid": phantoms.ellipsoid(), "torus": phantoms.torus()}
    rows = []
    for grid_name, (spacing, direction) in grids.items():
        for shape_name, phantom in shapes.items():
            volume = phantoms.voxelise(phantom, spacing, direction)
            for extractor in ("flying edges", "surface nets"):
                for smoothing in (0, MeshOptions().smoothing_iterations):
                    options = MeshOptions(smoothing_iterations=smoothing)
                    start = time.perf_counter()
                    if extractor == "flying edges":
                        points, triangles = polydata_arrays(
                            mask_surface(volume.array, volume.index_to_lps(), options)
                        )
                    else:
                        points, triangles = surface_nets(volume.array, volume.index_to_lps(), options)
                    seconds = time.perf_counter() - start
                    distance = phantom.distance(points)
                    measures = measure_surface(points, triangles)
                    rows.append(
                        {
                            "grid": grid_name,
                            "phantom": shape_name,
                            "extractor": extractor,
                            "smoothing_iterations": smoothing,
                            "mean_mm": float(distance.mean()),
                            "p95_mm": float(np.percentile(distance, 95)),
                            "max_mm": float(distance.max()),
                            "volume_error_percent": 100.0 * (measures.volume_mm3 / phantom.volume_mm3 - 1.0),
                            "closed": measures.closed,
                            "manifold": measures.manifold,
                            "triangles": measures.triangles,
                            "seconds": seconds,
                        }
                    )
    return rows


def chest_label_map(path: Path) -> dict[int, int]:
    """Two lobulated lung-sized ellipsoids and a nodule on a 512x512x300 grid; returns voxel counts."""
    volume = Volume(np.zeros(SHAPE_KJI, np.uint8), SPACING, (-179.0, -179.0, -150.0))
    k, j, i = np.ogrid[: SHAPE_KJI[0], : SHAPE_KJI[1], : SHAPE_KJI[2]]
    x, y, z = i * SPACING[0] - 179.0, j * SPACING[1] - 179.0, k * SPACING[2] - 150.0
    for value, centre_x in ((1, 80.0), (2, -80.0)):  # left lung at +x (LPS), right lung at -x
        r = ((x - centre_x) / 60.0) ** 2 + ((y + 10.0) / 95.0) ** 2 + (z / 125.0) ** 2
        lobulation = 0.06 * np.sin(x / 9.0) * np.sin(y / 11.0) * np.sin(z / 13.0)
        volume.array[r <= 1.0 + lobulation] = value
    volume.array[(x - 70.0) ** 2 + (y + 30.0) ** 2 + (z - 20.0) ** 2 <= 36.0] = 3
    sitk.WriteImage(volume.to_sitk(), str(path), useCompression=True)
    return {v: int(c) for v, c in enumerate(np.bincount(volume.array.ravel())) if v}


def baseline_export(path: Path, out_dir: Path, crop: bool) -> int:
    """SimpleITK read, per label: (crop + pad,) skimage marching cubes, LPS transform,
    numpy-stl binary write."""
    volume = Volume.from_sitk(sitk.ReadImage(str(path)))
    labels = volume.array
    index_to_lps = volume.index_to_lps()
    out_dir.mkdir(parents=True, exist_ok=True)
    written = 0
    for value, box in enumerate(ndimage.find_objects(labels), start=1):
        if box is None:
            continue
        if crop:
            mask = np.pad(labels[box] == value, 1).astype(np.float32)
            start_kji = np.array([s.start for s in box]) - 1
        else:  # the usual way: the whole grid, padded so that labels at the border close
            mask = np.pad(labels == value, 1).astype(np.float32)
            start_kji = -np.ones(3)
        verts_kji, faces, _, _ = marching_cubes(mask, level=0.5)
        ijk = (verts_kji + start_kji)[:, ::-1]
        points = ijk @ index_to_lps[:3, :3].T + index_to_lps[:3, 3]
        faces = orient_outward(points, faces.astype(np.int64))
        surface = numpy_stl.Mesh(np.zeros(len(faces), dtype=numpy_stl.Mesh.dtype))
        surface.vectors[:] = points[faces]
        surface.save(str(out_dir / f"label_{value}.stl"), mode=numpy_stl.stl.Mode.BINARY)
        written += 1
    return written


def interleaved_best(repeats: int, runs: dict) -> dict[str, dict[str, float]]:
    """Best-of-``repeats`` wall and CPU seconds of each run, the runs interleaved within each repeat
    (same load for all)."""
    best = {name: {"wall": float("inf"), "cpu": float("inf")} for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            wall, cpu = time.perf_counter(), time.process_time()
            run()
            best[name]["wall"] = min(best[name]["wall"], time.perf_counter() - wall)
            best[name]["cpu"] = min(best[name]["cpu"], time.process_time() - cpu)
    return best


def speed_table(repeats: int) -> dict:
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        path = folder / "segmentation.nii.gz"
        counts = chest_label_map(path)
        rows = []
        load_before = os.getloadavg()
        for smoothing in (0, MeshOptions().smoothing_iterations):
            best = interleaved_best(
                repeats,
                {
                    "engine": partial(
                        medsegai,
                        [
                            "export-stl",
                            str(path),
                            "-o",
                            str(folder / "engine"),
                            "--quiet",
                            "--smooth",
                            str(smoothing),
                        ],
                    ),
                    "naive": lambda: baseline_export(path, folder / "naive", crop=False),
                    "cropped": lambda: baseline_export(path, folder / "cropped", crop=True),
                },
            )
            report = json.loads((folder / "engine" / "meshes.json").read_text())["meshes"]
            engine, naive, cropped = (best[name]["wall"] for name in ("engine", "naive", "cropped"))
            rows.append(
                {
                    "engine_smoothing_iterations": smoothing,
                    "baseline_smoothing": "none (scikit-image has no smoother)",
                    "engine_seconds": engine,
                    "baseline_seconds": naive,
                    "speedup": naive / engine,
                    "cropped_baseline_seconds": cropped,
                    "speedup_vs_cropped_baseline": cropped / engine,
                    "engine_cpu_seconds": best["engine"]["cpu"],
                    "baseline_cpu_seconds": best["naive"]["cpu"],
                    "cpu_speedup": best["naive"]["cpu"] / best["engine"]["cpu"],
                    "engine_triangles": sum(m["triangles"] for m in report),
                    "engine_all_closed_manifold": all(m["closed"] and m["manifold"] for m in report),
                }
            )
        unsmoothed, smoothed = (row["engine_seconds"] for row in rows)
        smoothing_share = max(0.0, smoothed - unsmoothed) / smoothed
        read = interleaved_best(repeats, {"read": lambda: sitk.ReadImage(str(path))})["read"]["wall"]
        load_after = os.getloadavg()
    return {
        "shape_kji": SHAPE_KJI,
        "spacing": SPACING,
        "voxels_per_label": counts,
        "read_seconds": read,
        "load_average_1_5_15_min": {"before": load_before, "after": load_after},
        "smoothing_share_of_default_export": smoothing_share,
        "target_speedup": TARGET_SPEEDUP,
        "rows": rows,
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    accuracy = accuracy_table()
    print(
        f"{'grid':24s} {'phantom':9s} {'extractor':12s} {'smooth':>6s} "
        f"{'mean mm':>8s} {'p95 mm':>7s} {'vol %':>7s} closed manifold"
    )
    for r in accuracy:
        print(
            f"{r['grid']:24s} {r['phantom']:9s} {r['extractor']:12s} "
            f"{r['smoothing_iterations']:6d} {r['mean_mm']:8.3f} "
            f"{r['p95_mm']:7.3f} {r['volume_error_percent']:+7.2f} {str(r['closed']):6s} {r['manifold']}"
        )
    speed = speed_table(args.repeats)
    load = speed["load_average_1_5_15_min"]
    print(
        f"\n512x512x300, 3 labels, .nii.gz in -> STL out (best of {args.repeats}; "
        f"reading the file alone: {speed['read_seconds']:.2f} s; "
        f"load average {load['before'][0]:.2f} before, {load['after'][0]:.2f} after, "
        f"on {os.cpu_count()} CPUs)"
    )
    print(
        f"{'engine smoothing':>16s} {'engine s':>9s} {'skimage (whole grid) s':>23s} {'speedup':>8s} "
        f"{'skimage (cropped) s':>20s} {'speedup':>8s} {'CPU s engine/whole grid':>24s} "
        f"{'CPU speedup':>12s} {'triangles':>10s}"
    )
    for r in speed["rows"]:
        print(
            f"{r['engine_smoothing_iterations']:16d} {r['engine_seconds']:9.2f} "
            f"{r['baseline_seconds']:23.2f} {r['speedup']:7.1f}x "
            f"{r['cropped_baseline_seconds']:20.2f} {r['speedup_vs_cropped_baseline']:7.1f}x "
            f"{r['engine_cpu_seconds']:11.2f} / {r['baseline_cpu_seconds']:10.2f} "
            f"{r['cpu_speedup']:11.1f}x {r['engine_triangles']:10d}"
        )
    default = speed["rows"][-1]
    print(
        f"smoothing: {100 * speed['smoothing_share_of_default_export']:.0f} % of the default export; "
        f"default export {default['speedup']:.1f}x the baseline (target {TARGET_SPEEDUP:.0f}x: "
        f"{'met' if default['speedup'] >= TARGET_SPEEDUP else 'not met'})"
    )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "accuracy": accuracy,
                "speed": speed,
                "environment": machine_record()
                | {
                    "vtk": vtk.vtkVersion.GetVTKVersion(),
                    "scikit_image": skimage.__version__,
                    "numpy": np.__version__,
                },
                "command": ".venv/bin/python benchmarks/mesh_speed.py --repeats " + str(args.repeats),
            },
            indent=2,
        )
        + "\n"
    )
    print(f"\nwrote {RESULTS.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
