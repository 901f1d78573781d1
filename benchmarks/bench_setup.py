"""What every benchmark script shares: the engine and the lab importable from this checkout, where
the shared data lies (:mod:`MedSegAILib.io.shared_data`), and a record of the machine a result
was measured on.

Scripts import it first (``from bench_setup import REPO, SHARED_DATA, machine_record``), before
``MedSegAILib``.
"""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "MedSegAI"), str(REPO / "lab")]

from MedSegAILib.io.shared_data import shared_data_path  # noqa: E402

SHARED_DATA = shared_data_path()


def machine_record(torch_threads: int | None = None) -> dict[str, Any]:
    """CPU count, torch threads used (when given), platform and the current load average (1, 5, 15 min)."""
    record: dict[str, Any] = {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }
    if torch_threads is not None:
        record["torch_threads"] = torch_threads
    return record
