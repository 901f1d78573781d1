"""Fixtures: a random-weight model, the chest phantom and its segmentation (random_model_fixtures)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "uncertainty"))

from random_model_fixtures import phantom, random_model, random_model_dir, segmentation  # noqa: E402,F401
