"""Run the real `medsegai` command line in a fresh process, as a user would."""

from __future__ import annotations

import os
import subprocess
import sys


def run_cli(*args: str) -> subprocess.CompletedProcess:
    """``python -m MedSegAILib ARGS`` (same as `medsegai ARGS`), with text stdout/stderr captured."""
    env = {k: v for k, v in os.environ.items() if k != "MEDSEGAI_DEBUG"}
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    return subprocess.run(
        [sys.executable, "-m", "MedSegAILib", *args], capture_output=True, text=True, env=env, timeout=300
    )
