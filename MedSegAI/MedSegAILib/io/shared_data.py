"""Where the project's shared data lies: ``$MEDSEGAI_SHARED_DATA``, else ``../shared/data``.

The one place that resolves it; the demo, the tests, the benchmarks and the lab all ask here.
"""

from __future__ import annotations

import os
from pathlib import Path

SHARED_DATA_VARIABLE = "MEDSEGAI_SHARED_DATA"


def shared_data_path() -> Path:
    """``$MEDSEGAI_SHARED_DATA``, else ``shared/data`` beside the repository (it may not exist)."""
    configured = os.environ.get(SHARED_DATA_VARIABLE)
    if configured:
        return Path(configured)
    repository = Path(__file__).resolve().parents[3]
    return repository.parent / "shared" / "data"


def shared_data_folder() -> Path | None:
    """:func:`shared_data_path` if that folder exists on this machine, else ``None``."""
    folder = shared_data_path()
    return folder if folder.is_dir() else None
