"""Draw a FROC curve as a PNG (matplotlib, no display needed)."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from ..io.atomic import atomic_path  # noqa: E402
from .froc import FrocResult  # noqa: E402


def write_froc_png(result: FrocResult, path: str | os.PathLike, title: str = "FROC") -> Path:
    """Plot sensitivity against false positives per scan (log axis, 1/8..8) with the CPM points.

    Returns:
        The path written.
    """
    figure, axis = plt.subplots(figsize=(6, 4.5), dpi=120)
    fp = [1e-3] + list(result.fp_per_scan)
    sensitivity = [0.0] + list(result.sensitivity)
    axis.step(fp, sensitivity, where="post", color="tab:blue", label="FROC")
    rates = list(result.sensitivity_at)
    axis.plot(
        rates,
        [result.sensitivity_at[r] for r in rates],
        "o",
        color="tab:red",
        label=f"CPM points (CPM = {result.cpm:.3f})",
    )
    axis.set_xscale("log", base=2)
    axis.set_xlim(1 / 16, 16)
    axis.set_xticks(rates, [f"1/{int(1 / r)}" if r < 1 else f"{r:g}" for r in rates])
    axis.set_ylim(0, 1.02)
    axis.set_xlabel("false positives per scan")
    axis.set_ylabel("sensitivity")
    axis.set_title(f"{title}: {result.references} nodules in {result.scans} scans")
    axis.grid(True, which="both", alpha=0.3)
    axis.legend(loc="lower right")
    figure.tight_layout()
    path = Path(path)
    with atomic_path(path) as temporary:
        figure.savefig(temporary, format="png")
    plt.close(figure)
    return path
