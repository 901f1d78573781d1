"""What every lab experiment shares with the benchmarks (:mod:`bench_setup`): the engine and the
lab importable from this checkout, the shared data folder, a machine record; and where results go.

Scripts import it first (``from lab_setup import REPO, RESULTS, SHARED_DATA, machine_record``).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from bench_setup import REPO, SHARED_DATA, machine_record  # noqa: E402

RESULTS = REPO / "lab" / "results"

__all__ = ["REPO", "RESULTS", "SHARED_DATA", "machine_record"]
