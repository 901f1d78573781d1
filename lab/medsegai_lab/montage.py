"""PNG montages of CT with label overlays, for looking at pseudo-labels and predictions."""

from __future__ import annotations

import os
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import ListedColormap  # noqa: E402

OVERLAY_COLOURS = [
    (0, 0, 0, 0),
    (0.5, 0.7, 1.0, 0.45),
    (1.0, 0.3, 0.2, 0.8),
    (0.3, 1.0, 0.3, 0.6),
    (1.0, 0.85, 0.2, 0.5),
    (1.0, 0.2, 1.0, 0.6),
]


def save_montage(
    hu: np.ndarray,
    labels: np.ndarray,
    spacing: Sequence[float],
    path: str | os.PathLike,
    title: str = "",
    axial_count: int = 8,
    include_slices: Sequence[int] = (),
) -> None:
    """Write axial slices and a coronal and a sagittal slice, with a label overlay.

    Args:
        hu: canonical CT ``[z, y, x]`` in HU (z towards Superior, y Posterior, x Left).
        labels: integer labels ``[z, y, x]`` (0 transparent; 1 blue, 2 red, 3 green, 4 yellow, 5 magenta).
        spacing: voxel size (x, y, z) mm, for the aspect ratio.
        path: output PNG.
        title: figure title.
        axial_count: how many axial slices, evenly spaced through the labelled range.
        include_slices: axial slices that must be shown (they replace the nearest ones).
    """
    cmap = ListedColormap(OVERLAY_COLOURS)
    zs = np.nonzero(labels.any(axis=(1, 2)))[0]
    lo, hi = (zs[0], zs[-1]) if zs.size else (0, hu.shape[0] - 1)
    slices = np.linspace(lo, hi, axial_count + 2)[1:-1].astype(int)
    for wanted in include_slices:
        slices[np.argmin(np.abs(slices - wanted))] = wanted
    columns = 5
    rows = int(np.ceil((axial_count + 2) / columns))
    fig, axes = plt.subplots(rows, columns, figsize=(3.2 * columns, 3.4 * rows))
    axes = axes.ravel()
    sx, sy, sz = spacing

    def show(ax, image, label, aspect, text):
        ax.imshow(image, cmap="gray", vmin=-1000, vmax=400, aspect=aspect, interpolation="nearest")
        ax.imshow(
            label, cmap=cmap, vmin=0, vmax=len(OVERLAY_COLOURS) - 1, aspect=aspect, interpolation="nearest"
        )
        ax.set_title(text, fontsize=8)
        ax.axis("off")

    for ax, z in zip(axes, slices):
        # Radiological view: canonical x runs to the patient's left, so column 0 (patient right)
        # is on the image left.
        show(ax, hu[z], labels[z], sy / sx, f"axial z={z}")
    y = hu.shape[1] // 2
    if labels.any():
        y = int(np.nonzero(labels)[1].mean())
    show(axes[axial_count], hu[::-1, y, :], labels[::-1, y, :], sz / sx, f"coronal y={y} (R on left)")
    x = hu.shape[2] // 2
    show(axes[axial_count + 1], hu[::-1, :, x], labels[::-1, :, x], sz / sy, f"sagittal x={x}")
    for ax in axes[axial_count + 2 :]:
        ax.axis("off")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=70)
    plt.close(fig)
