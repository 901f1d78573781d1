"""Progress reporting and cancellation shared by the engine, the CLI and the Slicer module.

Engine functions take an optional ``progress`` callable ``(fraction, message)`` and an
optional :class:`CancelToken`. The CLI prints progress on stderr as lines like::

    [ 42%] inference: window 3/8

which the Slicer module parses (see :data:`PROGRESS_LINE`).
"""

from __future__ import annotations

import re
import sys
import threading
from collections.abc import Callable
from typing import TextIO

from .errors import Cancelled

ProgressCallback = Callable[[float, str], None]

PROGRESS_LINE = re.compile(r"^\[\s*(?P<percent>\d{1,3})%\]\s(?P<message>.*)$")


def no_progress(fraction: float, message: str) -> None:
    """A progress callback that ignores everything."""


class CancelToken:
    """A thread-safe flag that long-running engine loops check between steps."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def raise_if_cancelled(self) -> None:
        if self._event.is_set():
            raise Cancelled("cancelled by the user")


def check_cancelled(token: CancelToken | None) -> None:
    """Raise :class:`Cancelled` if ``token`` was cancelled (``None`` never is)."""
    if token is not None:
        token.raise_if_cancelled()


class StderrProgress:
    """Prints ``[ NN%] message`` lines, skipping repeats of the same line."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream or sys.stderr
        self._last = ""

    def __call__(self, fraction: float, message: str) -> None:
        line = f"[{int(round(100 * min(max(fraction, 0.0), 1.0))):3d}%] {message}"
        if line != self._last:
            self._last = line
            print(line, file=self._stream, flush=True)


def sub_progress(progress: ProgressCallback, start: float, end: float) -> ProgressCallback:
    """Map a stage's own 0..1 progress into the ``start..end`` part of the whole job."""

    def report(fraction: float, message: str) -> None:
        progress(start + (end - start) * min(max(fraction, 0.0), 1.0), message)

    return report


def parse_progress_line(line: str) -> tuple[float, str] | None:
    """Return ``(fraction, message)`` for a progress line, else ``None``."""
    match = PROGRESS_LINE.match(line.strip())
    if not match:
        return None
    return int(match["percent"]) / 100.0, match["message"]
