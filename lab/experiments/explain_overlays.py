"""The explanation maps of one `segment` pass on the chest CT series, drawn over the CT.

Runs the shipped model on ../shared/data/chest_ct_dicom (512 x 512 x 141) with keep_features,
then Monte-Carlo dropout (10 samples) and the Grad-CAM of the right lung, brings the maps to
the input grid as the CLI writes them, prints their ranges inside and outside the lungs,
and draws docs/images/segment_explanations.png: the axial slice through the right-lung
mass, with the segmentation, the entropy, the mutual information and the right lung's
Grad-CAM (radiological view). The findings' map is drawn by detect_chest_ct.py.

    .venv/bin/python lab/experiments/explain_overlays.py
"""

from __future__ import annotations

import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from lab_setup import REPO, SHARED_DATA  # noqa: E402  (first: puts the engine on sys.path)
from MedSegAILib.explain.targets import segment_gradcam  # noqa: E402
from MedSegAILib.inference.engine import segment_volume  # noqa: E402
from MedSegAILib.io import read_volume  # noqa: E402
from MedSegAILib.models.registry import load_model, resolve_model  # noqa: E402
from MedSegAILib.report.overlay import label_overlay  # noqa: E402
from MedSegAILib.uncertainty.mc_dropout import estimate_uncertainty  # noqa: E402

DATA = SHARED_DATA / "chest_ct_dicom"
MASS_LPS = (-85.3, 81.9, -9.3)  # finding 1 of lab/results/detect_chest_ct.json
SAMPLES = 10


def main() -> int:
    if not DATA.is_dir():
        print(f"skipped: {DATA} is absent")
        return 0
    volume = read_volume(DATA)
    model = load_model(resolve_model(None), "cpu")
    result = segment_volume(volume, model, keep_features=True, threads=2)
    uncertainty = estimate_uncertainty(result, model, SAMPLES)
    entropy = result.to_input_grid(uncertainty.entropy)
    information = result.to_input_grid(uncertainty.mutual_information)
    gradcam, _ = segment_gradcam(result, model, "right lung", volume=volume, threads=2)
    labels = result.labels.array
    lungs = np.isin(labels, [model.card.label(name).value for name in ("left lung", "right lung")])
    for name, values in (
        ("entropy (nats)", entropy),
        ("mutual information (nats)", information),
        ("Grad-CAM right lung", gradcam),
    ):
        print(
            f"{name:28s} max {values.max():.3f}; mean in lungs {values[lungs].mean():.4f}, "
            f"elsewhere {values[~lungs].mean():.4f}"
        )

    i, j, k = np.rint(volume.lps_to_ijk(MASS_LPS)).astype(int)
    figure, axes = plt.subplots(1, 4, figsize=(20, 5.6))
    ct = volume.array[k]
    overlay = label_overlay(
        labels[k], {label.value: np.array(label.color) / 255.0 for label in model.card.labels}, alpha=0.4
    )
    panels = (
        (None, "segmentation"),
        (entropy[k], "entropy of the mean softmax (10 samples)"),
        (information[k], "mutual information (BALD)"),
        (gradcam[k], "Grad-CAM of the right lung (decoder.0)"),
    )
    for axis, (values, title) in zip(axes, panels):
        axis.imshow(ct, cmap="gray", vmin=-1350, vmax=150)
        if values is None:
            axis.imshow(overlay)
        else:
            faint = 0.02 * max(float(values.max()), 1e-6)
            shown = axis.imshow(
                np.ma.masked_less_equal(values, faint), cmap="jet" if "Grad" in title else "magma", alpha=0.6
            )
            figure.colorbar(shown, ax=axis, fraction=0.046)
        axis.set_title(f"{title}, k={k}", fontsize=10)
        axis.axis("off")
    figure.suptitle(
        'segment --uncertainty 10 --gradcam "right lung" on chest_ct_dicom (image left = patient right)'
    )
    figure.tight_layout()
    path = REPO / "docs" / "images" / "segment_explanations.png"
    figure.savefig(path, dpi=70)
    plt.close(figure)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
