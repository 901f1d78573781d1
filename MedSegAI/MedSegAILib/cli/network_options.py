"""Options shared by the commands that run the network (`segment`, `detect`); the job checks their values."""

from __future__ import annotations

import argparse

from ..detection.detector import DEFAULT_THRESHOLD
from ..inference.device import DEFAULT_CPU_THREADS


def add_network_arguments(parser: argparse.ArgumentParser) -> None:
    """``--fast`` and ``--threads``."""
    parser.add_argument(
        "--fast", action="store_true", help="run at the model's coarser fast spacing (quicker, less detail)"
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=DEFAULT_CPU_THREADS,
        metavar="N",
        help=f"CPU threads for the network when it runs on the CPU (default: {DEFAULT_CPU_THREADS})",
    )


def add_threshold_argument(parser: argparse.ArgumentParser, condition: str = "") -> None:
    """``--threshold P``; ``condition`` prefixes the help (e.g. ``"with --detect: "``)."""
    parser.add_argument(
        "--threshold",
        type=float,
        default=DEFAULT_THRESHOLD,
        metavar="P",
        help=f"{condition}report findings whose score is at least P, 0..1 (default: {DEFAULT_THRESHOLD})",
    )
