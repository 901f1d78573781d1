"""Acceptance check on the real chest CT: the right-lung mass is the top finding.

Runs segmentation + detection once on ../shared/data/chest_ct_dicom (512x512x141), prints
the findings table, writes lab/results/detect_chest_ct.json and a picture of every
finding (axial slice through its centre, lung window, nodule outline) to
docs/images/detect_chest_ct.png, and the top finding's map (`detect --gradcam`, default method
and layer) over the CT to docs/images/finding_gradcam.png.

    .venv/bin/python lab/experiments/detect_chest_ct.py [--model NAME_OR_PATH] [--threshold P]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from lab_setup import REPO, RESULTS, SHARED_DATA  # noqa: E402  (first: puts the engine on sys.path)
from MedSegAILib.detection.detector import DEFAULT_THRESHOLD  # noqa: E402
from MedSegAILib.detection.nodule_scorer import scorer_for_model  # noqa: E402
from MedSegAILib.detection.pipeline import segment_and_detect  # noqa: E402
from MedSegAILib.explain.finding_gradcam import (
    DEFAULT_FINDING_LAYER,
    DEFAULT_FINDING_METHOD,
    findings_gradcam,
)  # noqa: E402
from MedSegAILib.inference.device import select_device  # noqa: E402
from MedSegAILib.io import read_volume  # noqa: E402
from MedSegAILib.models.registry import load_model, resolve_model  # noqa: E402

DATA = SHARED_DATA / "chest_ct_dicom"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default=None)
    parser.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--png", default=str(REPO / "docs" / "images" / "detect_chest_ct.png"))
    parser.add_argument("--gradcam-png", default=str(REPO / "docs" / "images" / "finding_gradcam.png"))
    parser.add_argument("--json", default=str(RESULTS / "detect_chest_ct.json"))
    args = parser.parse_args()
    if not DATA.is_dir():
        print(f"skipped: {DATA} is absent")
        return 0
    volume = read_volume(DATA)
    card = resolve_model(args.model)
    model = load_model(card, select_device(args.device))
    started = time.perf_counter()
    scorer = scorer_for_model(model.card)
    segmentation, detection = segment_and_detect(volume, model, threshold=args.threshold, scorer=scorer)
    seconds = time.perf_counter() - started
    midline_x = float(np.mean(volume.ijk_to_lps([[0, 0, 0], [volume.shape_ijk[0] - 1, 0, 0]])[:, 0]))

    print(
        f"model {card.name} {card.version}; threshold {args.threshold}; "
        f"{detection.candidates} candidates; {seconds:.1f} s"
    )
    print(
        f"{'id':>3} {'score':>6} {'side':>6} {'diam':>6} {'mean':>6} {'vol mm3':>9} "
        f"{'L-RADS':>6}  centre (LPS mm)"
    )
    rows = []
    for finding in detection.findings:
        m = finding.measurement
        side = "right" if m.center[0] < midline_x else "left"  # LPS: +x is the patient's left
        rows.append(finding.to_json() | {"side": side})
        print(
            f"{finding.id:3d} {finding.score:6.3f} {side:>6} {m.long_axis_mm:6.1f} {m.mean_diameter_mm:6.1f} "
            f"{m.volume_mm3:9.0f} {m.lung_rads:>6}  {np.round(m.center, 1).tolist()}"
        )
    top = rows[0] if rows else None
    accepted = bool(top and top["side"] == "right" and top["diameter_mm"] >= 15.0 and len(rows) <= 3)
    print(
        "acceptance (top finding is a right-lung mass >= 15 mm, <= 2 others): "
        f"{'PASS' if accepted else 'FAIL'}"
    )
    result = {
        "model": f"{card.name} {card.version}",
        "threshold": args.threshold,
        "seconds": round(seconds, 2),
        "candidates": detection.candidates,
        "findings": rows,
        "accepted": accepted,
    }
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    draw(volume, detection, Path(args.png))
    if detection.findings:
        values, _ = findings_gradcam(segmentation.model_grid, detection.findings, scorer.network, volume)
        draw_gradcam(volume, detection, values, Path(args.gradcam_png))
    print(f"wrote {args.json}, {args.png} and {args.gradcam_png}")
    return 0


def draw(volume, detection, path: Path) -> None:
    """One row per finding: the axial slice with the finding boxed, and a zoomed crop outlined."""
    findings = detection.findings[:6] or [None]
    figure, axes = plt.subplots(len(findings), 2, figsize=(9, 4.2 * len(findings)), squeeze=False)
    for row, finding in zip(axes, findings):
        if finding is None:
            k = volume.array.shape[0] // 2
            row[0].imshow(volume.array[k], cmap="gray", vmin=-1350, vmax=150)
            row[0].set_title(f"no findings at threshold {detection.threshold} (slice k={k})")
            for axis in row:
                axis.axis("off")
            continue
        i, j, k = np.rint(volume.lps_to_ijk(finding.measurement.center)).astype(int)
        image = volume.array[k]
        mask = detection.labels[k] == finding.id
        row[0].imshow(image, cmap="gray", vmin=-1350, vmax=150)
        row[0].contour(mask, levels=[0.5], colors="red", linewidths=1.0)
        half = max(20, int(1.2 * finding.measurement.long_axis_mm / volume.spacing[0]))
        row[0].add_patch(plt.Rectangle((i - half, j - half), 2 * half, 2 * half, fill=False, color="yellow"))
        m = finding.measurement
        row[0].set_title(f"finding {finding.id}: score {finding.score:.2f}, slice k={k}")
        crop = (slice(max(j - half, 0), j + half), slice(max(i - half, 0), i + half))
        row[1].imshow(image[crop], cmap="gray", vmin=-1350, vmax=150)
        row[1].contour(mask[crop], levels=[0.5], colors="red", linewidths=1.5)
        row[1].set_title(
            f"long {m.long_axis_mm:.1f} mm, short {m.short_axis_mm:.1f} mm, "
            f"{m.volume_mm3:.0f} mm³, Lung-RADS {m.lung_rads}"
        )
        for axis in row:
            axis.axis("off")
    figure.suptitle("MedSegAI findings on chest_ct_dicom (image left = patient right)")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=80)
    plt.close(figure)


def draw_gradcam(volume, detection, values: np.ndarray, path: Path) -> None:
    """The axial slice through the top finding: CT, its outline and the findings map
    (values <= 0.02 not drawn)."""
    finding = detection.findings[0]
    i, j, k = np.rint(volume.lps_to_ijk(finding.measurement.center)).astype(int)
    half = int(round(45.0 / volume.spacing[0]))
    crop = (slice(max(j - half, 0), j + half), slice(max(i - half, 0), i + half))
    figure, axes = plt.subplots(1, 2, figsize=(10, 5))
    for axis, overlay in zip(axes, (False, True)):
        axis.imshow(volume.array[k][crop], cmap="gray", vmin=-1350, vmax=150)
        axis.contour((detection.labels[k] == finding.id)[crop], levels=[0.5], colors="red", linewidths=1.2)
        if overlay:
            shown = axis.imshow(
                np.ma.masked_less_equal(values[k][crop], 0.02), cmap="jet", vmin=0, vmax=1, alpha=0.45
            )
            figure.colorbar(shown, ax=axis, fraction=0.046)
        axis.axis("off")
    axes[0].set_title(f"finding {finding.id}: score {finding.score:.2f}, slice k={k}, 90 mm field")
    axes[1].set_title(f"map: {DEFAULT_FINDING_METHOD} at {DEFAULT_FINDING_LAYER}")
    figure.suptitle("detect --gradcam on chest_ct_dicom (image left = patient right)")
    figure.tight_layout()
    figure.savefig(path, dpi=80)
    plt.close(figure)


if __name__ == "__main__":
    sys.exit(main())
