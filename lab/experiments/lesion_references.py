"""The product's lesion outlines against real references: LIDC-IDRI reader contours and the
Lung-PET-CT-Dx tumour boxes.

For each scan it runs ``medsegai segment CT -o OUT/<case> --detect --quiet`` (or, with
``--outputs DIR``, judges the outputs already in ``DIR/<case>``) and reads ``nodules.nii.gz``
(label = finding id) and ``findings.json``.

- LIDC-IDRI-0001, -0002, -0003, -0005: the physical nodules that >= 3 of the 4 readers outlined
  (a scan without one, such as the 0002 slab, is reported and not run). Per nodule: the Dice of
  the union of the findings that touch any reader's outline against the readers' 50 % consensus
  (0 when missed), the finding's long axis (``diameter_mm``) minus the consensus long axis (the
  lab's ruler, the product's convention, is also run on the finding's mask as a check), and
  beside them the readers' own spread: each reader against the 50 % consensus of the others
  (median Dice, median |long-axis difference|). Every finding is put in one class: ``consensus``
  (touches a >= 3-reader nodule's outlines), ``minority`` (touches only outlines of nodules fewer
  readers marked), ``point mark`` (holds a reader's < 3 mm nodule or non-nodule point) or
  ``false positive`` (touches no reader's mark).
- Lung_Dx-A0001 (lung-kernel series): the findings that overlap the tumour boxes, and per boxed
  slice the IoU of the box with the bounding box of those findings' union. Boxes drawn on the
  soft-tissue reconstruction are moved to the same slice position of the lung-kernel series;
  where both series have a box on a slice, the IoU of the two boxes is the annotation's own spread.

Writes lab/results/lesion_references.json and prints the tables.

    .venv/bin/python lab/experiments/lesion_references.py [--outputs DIR] [--out .cache/lesion_references]
        [--device auto] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk
from lab_setup import REPO, RESULTS, SHARED_DATA  # noqa: E402  (first: puts the lab on sys.path)
from medsegai_lab.lidc_consensus import (  # noqa: E402
    CtGrid,
    PhysicalNodule,
    consensus,
    consensus_nodules,
    dice,
    group_nodules,
    long_axis_mm,
    overlaps,
    parse_lidc_xml,
    point_voxel,
    read_ct_grid,
    reader_agreement,
)
from medsegai_lab.tumour_boxes import box_iou, box_overlap, mask_box, place_boxes, read_boxes  # noqa: E402

LIDC_CASES = ("LIDC-IDRI-0001", "LIDC-IDRI-0002", "LIDC-IDRI-0003", "LIDC-IDRI-0005")
MIN_READERS = 3
LUNG_DX = SHARED_DATA / "lung_pet_ct_dx" / "Lung_Dx-A0001"
LUNG_DX_STUDY = LUNG_DX / "04-04-2007-NA-Chest-07990"
LUNG_KERNEL = "2.000000-5mm-40805"
SOFT_TISSUE_KERNEL = "3.000000-5mm-41315"


def run_segment(ct: Path, out: Path, device: str) -> None:
    """The product on one scan: ``medsegai segment CT -o OUT --detect --quiet``."""
    command = [str(REPO / ".venv" / "bin" / "medsegai"), "segment", str(ct), "-o", str(out)]
    subprocess.run([*command, "--detect", "--quiet", "--device", device], check=True)


def on_grid(path: Path, grid: CtGrid) -> np.ndarray:
    """A label image resampled (nearest neighbour) onto the CT grid, as a ``[k, j, i]`` array.

    A product grid stored in another axis order or orientation still lines up; on the same
    grid it is a copy.
    """
    image = sitk.ReadImage(str(path))
    return sitk.GetArrayFromImage(
        sitk.Resample(image, grid.image, sitk.Transform(), sitk.sitkNearestNeighbor, 0)
    )


def lungs_on_grid(out: Path, grid: CtGrid) -> np.ndarray:
    """The product's lung segments (``left lung``, ``right lung``) of ``segmentation.nii.gz``."""
    names = json.loads((out / "labels.json").read_text())["labels"]
    values = [entry["value"] for entry in names if entry["name"].endswith(" lung")]
    return np.isin(on_grid(out / "segmentation.nii.gz", grid), values)


def read_outputs(out: Path, grid: CtGrid) -> tuple[list[dict[str, Any]], dict[int, np.ndarray], dict]:
    """Findings, each finding's voxel set on ``grid``, and the model and threshold that made them."""
    labels = on_grid(out / "nodules.nii.gz", grid)
    written = json.loads((out / "findings.json").read_text())
    findings = written["findings"]
    flat = np.flatnonzero(labels)
    values = labels.ravel()[flat]
    voxels = {int(f["id"]): flat[values == f["id"]] for f in findings}
    model = json.loads((out / "run.json").read_text())["model"]
    product = {
        "model": f"{model['name']} {model['version']} (weights {model['weights_sha256'][:12]})",
        "threshold": written["threshold"],
    }
    return findings, voxels, product


def union(sets: list[np.ndarray]) -> np.ndarray:
    """The union of voxel sets."""
    return np.unique(np.concatenate(sets)) if sets else np.zeros(0, dtype=np.int64)


def patient_centre(voxels: np.ndarray, grid: CtGrid) -> list[float]:
    """Centroid of a voxel set in LPS mm."""
    index = np.column_stack(np.unravel_index(voxels, grid.shape))[:, ::-1].mean(axis=0)
    return [round(c, 1) for c in grid.image.TransformContinuousIndexToPhysicalPoint(index.tolist())]


def judge_nodule(group: PhysicalNodule, grid: CtGrid, found: dict[int, np.ndarray], findings: list) -> dict:
    """One >= 3-reader nodule: the product's outline and size against the consensus and the readers."""
    reference = consensus(list(group.voxels.values()))
    marks = union(list(group.voxels.values()))
    hits = [int(f["id"]) for f in findings if overlaps(found[int(f["id"])], marks)]
    product = union([found[i] for i in hits])
    reference_long = long_axis_mm(reference, grid)
    reported = max((f["diameter_mm"] for f in findings if int(f["id"]) in hits), default=None)
    agreement = reader_agreement(group, grid)
    textures = [m.characteristics["texture"] for m in group.members if "texture" in m.characteristics]
    return {
        "center_lps": patient_centre(reference, grid),
        "readers": group.readers,
        "texture_median": float(np.median(textures)) if textures else None,
        "consensus_voxels": int(len(reference)),
        "consensus_long_axis_mm": round(reference_long, 1),
        "findings": hits,
        "scores": [f["score"] for f in findings if int(f["id"]) in hits],
        "dice": round(dice(product, reference), 3),
        "finding_diameter_mm": reported,
        "finding_long_axis_lab_ruler_mm": round(long_axis_mm(product, grid), 1) if hits else None,
        "long_axis_error_mm": None if reported is None else round(reported - reference_long, 1),
        "reader_dice": [round(a.dice, 3) for a in agreement],
        "reader_dice_median": round(float(np.median([a.dice for a in agreement])), 3),
        "reader_long_axis_mm": [round(a.long_axis_mm, 1) for a in agreement],
        "reader_long_axis_difference_mm": [round(a.long_axis_difference_mm, 1) for a in agreement],
        "reader_abs_long_axis_difference_median_mm": round(
            float(np.median([abs(a.long_axis_difference_mm) for a in agreement])), 1
        ),
    }


def classify_findings(
    findings: list, found: dict[int, np.ndarray], groups: list[PhysicalNodule], point_voxels: set[int]
) -> dict[int, str]:
    """Each finding's class: consensus, minority, point mark or false positive."""
    classes = {}
    for finding in findings:
        voxels = found[int(finding["id"])]
        touched = [g.readers for g in groups if overlaps(voxels, union(list(g.voxels.values())))]
        if touched and max(touched) >= MIN_READERS:
            classes[int(finding["id"])] = "consensus"
        elif touched:
            classes[int(finding["id"])] = "minority"
        elif point_voxels.intersection(voxels.tolist()):
            classes[int(finding["id"])] = "point mark"
        else:
            classes[int(finding["id"])] = "false positive"
    return classes


def lidc_case(case: str, outputs: Path, run: bool, device: str) -> dict:
    """Judge the product on one LIDC scan."""
    folder = SHARED_DATA / "lidc_idri" / case
    grid = read_ct_grid(folder / "ct")
    reading = parse_lidc_xml(next(folder.glob("*.xml")))
    groups = group_nodules(reading.nodules, grid)
    kept = consensus_nodules(groups, grid, MIN_READERS)
    result: dict[str, Any] = {
        "case": case,
        "readers": reading.readers,
        "outlined_nodules_by_readers": sorted((g.readers for g in groups), reverse=True),
    }
    if not kept:
        result["skipped"] = f"no nodule outlined by >= {MIN_READERS} readers"
        return result
    if run:
        run_segment(folder / "ct", outputs / case, device)
    findings, found, product = read_outputs(outputs / case, grid)
    points = {v for v in (point_voxel(p, grid) for p in reading.points) if v is not None}
    classes = classify_findings(findings, found, groups, points)
    result |= {
        "product": product,
        "nodules": [judge_nodule(g, grid, found, findings) for g in kept],
        "findings": [
            {
                "id": f["id"],
                "score": f["score"],
                "diameter_mm": f["diameter_mm"],
                "center": f["center"],
                "class": classes[int(f["id"])],
            }
            for f in findings
        ],
        "false_positives": sum(c == "false positive" for c in classes.values()),
    }
    return result


def lung_dx_case(outputs: Path, run: bool, device: str) -> dict:
    """Judge the product on Lung_Dx-A0001's lung-kernel series against the tumour boxes."""
    grids = {name: read_ct_grid(LUNG_DX_STUDY / name) for name in (LUNG_KERNEL, SOFT_TISSUE_KERNEL)}
    grid = grids[LUNG_KERNEL]
    placed = [p for p in place_boxes(read_boxes(LUNG_DX / "Annotation"), grids) if LUNG_KERNEL in p.slices]
    case = "Lung_Dx-A0001"
    if run:
        run_segment(LUNG_DX_STUDY / LUNG_KERNEL, outputs / case, device)
    findings, found, product = read_outputs(outputs / case, grid)
    lungs = lungs_on_grid(outputs / case, grid)
    volume = np.zeros(grid.shape, dtype=bool)

    def touches_a_box(voxels: np.ndarray) -> bool:
        volume.ravel()[voxels] = True
        hit = any(box_overlap(p.box.pixels, volume[p.slices[LUNG_KERNEL]]).overlaps for p in placed)
        volume.ravel()[voxels] = False
        return hit

    hits = [int(f["id"]) for f in findings if touches_a_box(found[int(f["id"])])]
    volume.ravel()[union([found[i] for i in hits])] = True
    by_slice: dict[int, dict[str, tuple]] = {}
    for p in placed:
        by_slice.setdefault(p.slices[LUNG_KERNEL], {})[p.series] = p.box.pixels
    slices = []
    for k in sorted(by_slice):
        row: dict[str, Any] = {"slice": k, "z_mm": round(float(grid.z_positions[k]), 1)}
        for series, box in by_slice[k].items():
            overlap = box_overlap(box, volume[k])
            name = "lung" if series == LUNG_KERNEL else "soft_tissue"
            xmin, ymin, xmax, ymax = box
            row |= {
                f"{name}_box": list(box),
                f"{name}_iou": round(overlap.iou, 3),
                f"{name}_overlaps": overlap.overlaps,
                f"{name}_box_in_lungs": round(float(lungs[k, ymin : ymax + 1, xmin : xmax + 1].mean()), 3),
            }
        bounds = mask_box(volume[k])
        row["finding_box"] = None if bounds is None else list(bounds)
        if len(by_slice[k]) == 2:
            row["box_vs_box_iou"] = round(box_iou(*by_slice[k].values()), 3)
        slices.append(row)
    occupied = np.flatnonzero(volume.any(axis=(1, 2)))
    return {
        "case": case,
        "series": LUNG_KERNEL,
        "product": product,
        "boxes": len(placed),
        "boxed_slices": [min(by_slice), max(by_slice)],
        "findings": [
            {
                "id": f["id"],
                "score": f["score"],
                "diameter_mm": f["diameter_mm"],
                "overlaps_boxes": int(f["id"]) in hits,
            }
            for f in findings
        ],
        "findings_overlapping_boxes": hits,
        "union_slices": [int(occupied.min()), int(occupied.max())] if len(occupied) else None,
        "slices": slices,
    }


def print_tables(lidc: list[dict], lung_dx: dict) -> None:
    """The readable summary of the JSON."""
    print("LIDC-IDRI nodules outlined by >= 3 readers: product vs 50 % consensus, beside reader vs others")
    header = (
        f"{'case':<15}{'z mm':>7}{'rdrs':>5}{'tex':>5}{'ref LA':>7}  {'findings (score)':<18}"
        f"{'Dice':>6}{'rdr Dice':>9}{'LA':>6}{'LA err':>7}{'rdr |dLA|':>10}"
    )
    print(header)
    for case in lidc:
        if "skipped" in case:
            print(
                f"{case['case']:<15}skipped: {case['skipped']} "
                f"(readers per outlined nodule: {case['outlined_nodules_by_readers']})"
            )
            continue
        for n in case["nodules"]:
            hits = ", ".join(f"{i} ({s:.2f})" for i, s in zip(n["findings"], n["scores"])) or "missed"
            size = "-" if n["finding_diameter_mm"] is None else f"{n['finding_diameter_mm']:.1f}"
            error = "-" if n["long_axis_error_mm"] is None else f"{n['long_axis_error_mm']:+.1f}"
            print(
                f"{case['case']:<15}{n['center_lps'][2]:7.1f}{n['readers']:5d}{n['texture_median']:5.1f}"
                f"{n['consensus_long_axis_mm']:7.1f}  {hits:<18}{n['dice']:6.3f}"
                f"{n['reader_dice_median']:9.3f}{size:>6}{error:>7}{n['reader_abs_long_axis_difference_median_mm']:10.1f}"
            )
    print()
    print(f"{'case':<15}{'findings':>9}{'consensus':>10}{'minority':>9}{'point':>7}{'FP':>4}")
    for case in lidc:
        if "skipped" in case:
            continue
        classes = [f["class"] for f in case["findings"]]
        counts = [classes.count(c) for c in ("consensus", "minority", "point mark", "false positive")]
        print(f"{case['case']:<15}{len(classes):9d}{counts[0]:10d}{counts[1]:9d}{counts[2]:7d}{counts[3]:4d}")
    print()
    print(
        f"Lung_Dx-A0001 ({lung_dx['series']}): {len(lung_dx['findings'])} findings, "
        f"{len(lung_dx['findings_overlapping_boxes'])} overlap the {lung_dx['boxes']} boxes "
        f"(ids {lung_dx['findings_overlapping_boxes']}); boxed slices {lung_dx['boxed_slices']}, "
        f"their union spans slices {lung_dx['union_slices']}"
    )
    print("IoU: box vs the bounding box of the overlapping findings' union; box/box: the two series' boxes;")
    print("in lungs: the fraction of the box's pixels in the product's lung segments")
    columns = {"lung_iou": "lung IoU", "soft_tissue_iou": "soft IoU", "box_vs_box_iou": "box/box"}
    columns |= {"lung_box_in_lungs": "in lungs", "soft_tissue_box_in_lungs": "soft in lungs"}
    print(
        f"{'slice':>5}{'z mm':>8}" + "".join(f"{title:>14}" for title in columns.values()) + "  finding box"
    )
    for row in lung_dx["slices"]:
        cells = [row.get(key) for key in columns]
        text = "".join(f"{'-' if c is None else f'{c:.3f}':>14}" for c in cells)
        print(f"{row['slice']:5d}{row['z_mm']:8.1f}{text}  {row['finding_box']}")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--outputs",
        type=Path,
        help="judge the segment outputs already in DIR/<case> instead of running segment",
    )
    parser.add_argument(
        "--out", type=Path, default=REPO / ".cache" / "lesion_references", help="where segment writes"
    )
    parser.add_argument("--device", default="auto", help="segment --device (default: auto)")
    parser.add_argument("--json", type=Path, default=RESULTS / "lesion_references.json")
    args = parser.parse_args()
    if not (SHARED_DATA / "lidc_idri").is_dir() or not LUNG_DX.is_dir():
        print(f"skipped: {SHARED_DATA} has no lidc_idri/ or lung_pet_ct_dx/Lung_Dx-A0001")
        return 0
    outputs = args.outputs or args.out
    run = args.outputs is None
    lidc = [lidc_case(case, outputs, run, args.device) for case in LIDC_CASES]
    lung_dx = lung_dx_case(outputs, run, args.device)
    print_tables(lidc, lung_dx)
    result = {
        "reference": f"LIDC: >= {MIN_READERS} of 4 readers, 50 % consensus; Lung-PET-CT-Dx: tumour boxes",
        "outputs": str(outputs),
        "lidc": lidc,
        "lung_dx": lung_dx,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
