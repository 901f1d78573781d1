"""``summary.png``: one picture of a job's outputs that a person can look at.

Top row: axial and coronal CT slices through the most relevant point (the top nodule
finding, else the largest nodule, else the lung centre) with the segmentation, and the same
axial slice with the entropy map and with the Grad-CAM map. Bottom: a 3-D view of the
exported meshes, in LPS millimetres, with findings marked.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import SimpleITK as sitk  # noqa: E402
import vtk  # noqa: E402
from mpl_toolkits.mplot3d.art3d import Poly3DCollection  # noqa: E402
from vtk.util.numpy_support import vtk_to_numpy  # noqa: E402

from ..io.atomic import atomic_path  # noqa: E402
from ..io.volume import Volume  # noqa: E402
from .overlay import label_overlay  # noqa: E402

WINDOW = (-1200.0, 400.0)  # lung window for display, HU


def write_summary_png(
    ct: Volume, outdir: str | os.PathLike, path: str | os.PathLike, title: str = ""
) -> Path:
    """Draw the summary figure of the outputs in ``outdir`` for the input ``ct``.

    Args:
        ct: the input volume (the grid every output map lies on).
        outdir: a folder with CONTRACT outputs (``segmentation.nii.gz``, ``labels.json``,
            optional ``uncertainty_entropy.nii.gz``, ``gradcam_*.nii.gz``,
            ``findings.json``, ``meshes/*.stl``).
        path: where to write the PNG (atomically).
        title: a line above the panels.

    Returns:
        The path written.
    """
    outdir = Path(outdir)
    labels = _read_map(outdir / "segmentation.nii.gz")
    colours = _label_colours(outdir / "labels.json")
    findings = _findings(outdir / "findings.json")
    entropy = _read_map(outdir / "uncertainty_entropy.nii.gz")
    # The findings' map first (the segment maps of a network without a learned nodule channel are empty).
    gradcams = sorted(outdir.glob("gradcam_*.nii.gz"), key=lambda path: path.name != "gradcam_nodules.nii.gz")
    gradcam = _read_map(gradcams[0]) if gradcams else None

    k, j, i = _focus_voxel(ct, labels, findings)
    figure = plt.figure(figsize=(16, 9), dpi=90)
    figure.suptitle(title or "MedSegAI summary", fontsize=13)
    axial = ct.array[k]
    coronal = ct.array[:, j, :]
    aspect = ct.spacing[2] / ct.spacing[0]

    _panel(
        figure.add_subplot(2, 4, 1),
        axial,
        _overlay(labels[k] if labels is not None else None, colours),
        f"segmentation, axial k={k}",
    )
    _panel(
        figure.add_subplot(2, 4, 2),
        coronal,
        _overlay(labels[:, j, :] if labels is not None else None, colours),
        f"segmentation, coronal j={j}",
        aspect=aspect,
        flip=True,
    )
    _heat_panel(
        figure.add_subplot(2, 4, 3),
        axial,
        entropy[k] if entropy is not None else None,
        "entropy (MC dropout)",
        "magma",
    )
    _heat_panel(
        figure.add_subplot(2, 4, 4),
        axial,
        gradcam[k] if gradcam is not None else None,
        f"Grad-CAM: {gradcams[0].name[8:-7].replace('_', ' ')}" if gradcam is not None else "Grad-CAM",
        "jet",
    )
    _mesh_panel(figure.add_subplot(2, 2, 3, projection="3d"), outdir / "meshes", colours, findings)
    _findings_panel(figure.add_subplot(2, 2, 4), findings)
    figure.tight_layout()
    with atomic_path(path) as temporary:
        figure.savefig(temporary, format="png")
    plt.close(figure)
    return Path(path)


def _read_map(path: Path) -> np.ndarray | None:
    return sitk.GetArrayFromImage(sitk.ReadImage(str(path))) if path.is_file() else None


def _label_colours(path: Path) -> dict[int, tuple[str, np.ndarray]]:
    if not path.is_file():
        return {}
    entries = json.loads(path.read_text())["labels"]
    return {int(e["value"]): (e["name"], np.asarray(e["color"], float) / 255.0) for e in entries}


def _findings(path: Path) -> list[dict]:
    return json.loads(path.read_text())["findings"] if path.is_file() else []


def _focus_voxel(ct: Volume, labels: np.ndarray | None, findings: list[dict]) -> tuple[int, int, int]:
    """The voxel (k, j, i) the slices go through."""
    shape = np.array(ct.array.shape)
    if findings:
        i, j, k = np.rint(ct.lps_to_ijk(np.asarray(findings[0]["center"]))).astype(int)
        return tuple(int(v) for v in np.clip([k, j, i], 0, shape - 1))  # type: ignore[return-value]
    if labels is not None and labels.any():
        return tuple(int(v) for v in np.argwhere(labels > 0).mean(axis=0))  # type: ignore[return-value]
    return tuple(int(v) for v in shape // 2)  # type: ignore[return-value]


def _overlay(labels: np.ndarray | None, colours: dict[int, tuple[str, np.ndarray]]) -> np.ndarray | None:
    return (
        label_overlay(labels, {value: colour for value, (_, colour) in colours.items()})
        if labels is not None
        else None
    )


def _panel(
    axis,
    image: np.ndarray,
    overlay: np.ndarray | None,
    title: str,
    aspect: float = 1.0,
    flip: bool = False,
) -> None:
    if flip:  # coronal: superior at the top
        image = image[::-1]
        overlay = overlay[::-1] if overlay is not None else None
    axis.imshow(image, cmap="gray", vmin=WINDOW[0], vmax=WINDOW[1], aspect=aspect, interpolation="nearest")
    if overlay is not None:
        axis.imshow(overlay, aspect=aspect, interpolation="nearest")
    axis.set_title(title, fontsize=9)
    axis.text(2, 12, "R", color="w", fontsize=8)  # image left = patient right (radiological view)
    axis.axis("off")


def _heat_panel(axis, image: np.ndarray, heat: np.ndarray | None, title: str, cmap: str) -> None:
    axis.imshow(image, cmap="gray", vmin=WINDOW[0], vmax=WINDOW[1], interpolation="nearest")
    if heat is None:
        title += " (not computed)"
    elif np.nanmax(heat) <= 0:
        title += " (empty: no such region predicted)"
    else:
        shown = np.ma.masked_less_equal(heat, 0.05 * float(np.nanmax(heat)))
        axis.imshow(shown, cmap=cmap, alpha=0.55, interpolation="nearest")
    axis.set_title(title, fontsize=9)
    axis.axis("off")


def _mesh_panel(axis, folder: Path, colours: dict[int, tuple[str, np.ndarray]], findings: list[dict]) -> None:
    """Meshes seen from the front (patient's right on the viewer's left), equal mm scale."""
    by_name = {name.replace(" ", "_"): colour for name, colour in colours.values()}
    bounds = []
    for stl in sorted(folder.glob("*.stl")):
        points, triangles = _read_stl(stl, max_triangles=12000)
        if len(triangles):
            opaque = "nodule" in stl.stem or "lung" not in stl.stem
            axis.add_collection3d(
                Poly3DCollection(
                    points[triangles],
                    facecolor=by_name.get(stl.stem, (0.7, 0.7, 0.7)),
                    edgecolor="none",
                    alpha=0.9 if opaque else 0.3,
                )
            )
            bounds.append((points.min(axis=0), points.max(axis=0)))
    for finding in findings[:5]:
        axis.scatter(*finding["center"], color="red", s=30)
    if bounds:
        low = np.min([b[0] for b in bounds], axis=0)
        high = np.max([b[1] for b in bounds], axis=0)
        axis.set_xlim(low[0], high[0])
        axis.set_ylim(low[1], high[1])
        axis.set_zlim(low[2], high[2])
        axis.set_box_aspect(np.maximum(high - low, 1.0))
    axis.set_title("meshes (LPS mm, anterior view) and findings (red)", fontsize=9)
    axis.set_xlabel("L (mm)")
    axis.set_zlabel("S (mm)")
    axis.set_yticks([])
    axis.view_init(elev=5, azim=-90)


def _read_stl(path: Path, max_triangles: int) -> tuple[np.ndarray, np.ndarray]:
    reader = vtk.vtkSTLReader()
    reader.SetFileName(str(path))
    reader.Update()
    mesh = reader.GetOutput()
    if mesh.GetNumberOfCells() > max_triangles:
        decimate = vtk.vtkQuadricDecimation()
        decimate.SetInputData(mesh)
        decimate.SetTargetReduction(1.0 - max_triangles / mesh.GetNumberOfCells())
        decimate.Update()
        mesh = decimate.GetOutput()
    if mesh.GetNumberOfCells() == 0:
        return np.zeros((0, 3)), np.zeros((0, 3), int)
    points = vtk_to_numpy(mesh.GetPoints().GetData())
    triangles = vtk_to_numpy(mesh.GetPolys().GetConnectivityArray()).reshape(-1, 3)
    return points, triangles


def _findings_panel(axis, findings: list[dict]) -> None:
    axis.axis("off")
    if not findings:
        axis.text(0.0, 0.9, "no nodule findings above the threshold", fontsize=10)
        return
    rows = [
        [
            f["id"],
            f"{f['score']:.2f}",
            f"{f['diameter_mm']:.1f}",
            f"{f['volume_mm3']:.0f}",
            ", ".join(f"{c:.0f}" for c in f["center"]),
            f.get("lung_rads") or f.get("kind", ""),
        ]
        for f in findings[:10]
    ]
    table = axis.table(
        cellText=rows,
        colLabels=["id", "score", "diam. mm", "vol. mm³", "centre LPS mm", "Lung-RADS"],
        loc="upper center",
    )
    table.auto_set_font_size(False)
    table.set_fontsize(8)
    axis.set_title(f"nodule findings ({len(findings)} at the default threshold)", fontsize=9)
