"""``run.json``: what ran, where, how long each stage took and how much memory it used.

Fields (CONTRACT.md): ``model`` (name, version, weights SHA-256), ``device``,
``timings`` in seconds (``load``, ``preprocess``, ``inference``, ``postprocess``, optional
stages such as ``read``, ``write``, ``uncertainty``, ``gradcam``, ``mesh``, and
``total``), ``peak_rss_mb`` and ``versions`` of the libraries, plus the command, input,
options and the time the run finished.
"""

from __future__ import annotations

import datetime
import platform
import resource
import sys
from collections.abc import Mapping
from importlib import metadata
from typing import Any

from .. import __version__
from ..models.card import ModelCard

REQUIRED_STAGES = ("load", "preprocess", "inference", "postprocess")
LIBRARIES = ("torch", "monai", "numpy", "SimpleITK", "scipy", "safetensors")


def peak_rss_mb() -> float:
    """This process's peak resident memory so far, in MB (MiB)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024.0 * 1024.0) if sys.platform == "darwin" else peak / 1024.0


def library_versions() -> dict[str, str]:
    """Versions of Python, MedSegAI and the libraries that shape results."""
    versions = {"python": platform.python_version(), "medsegai": __version__}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def build_run_record(
    command: str,
    card: ModelCard,
    device: str,
    timings: Mapping[str, float],
    *,
    input_path: str,
    options: Mapping[str, Any],
) -> dict[str, Any]:
    """The ``run.json`` dictionary.

    Args:
        command: the subcommand (``segment``, ``detect``).
        card: the model that ran.
        device: the torch device used (``cpu``, ``cuda:0``).
        timings: seconds per stage; must include :data:`REQUIRED_STAGES` and ``total``.
        input_path: what was read.
        options: the run options worth recording (``fast``, ``threads``...).

    Raises:
        ValueError: a required stage or ``total`` is missing.
    """
    missing = [stage for stage in REQUIRED_STAGES + ("total",) if stage not in timings]
    if missing:
        raise ValueError(f"run record is missing timings for {', '.join(missing)}")
    return {
        "command": command,
        "input": input_path,
        "model": {
            "name": card.name,
            "version": card.version,
            "weights_sha256": card.weights["sha256"],
            "folder": str(card.folder) if card.folder else None,
        },
        "device": device,
        "options": dict(options),
        "timings": {stage: round(float(seconds), 3) for stage, seconds in timings.items()},
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "versions": library_versions(),
        "finished": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
