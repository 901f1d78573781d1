"""Run the engine in a child process without blocking the GUI (no Qt needed).

The child's stdout and stderr are read line by line on a background thread into a queue;
the GUI drains it with :meth:`JobRunner.poll` from a timer, so no callback ever runs on a
foreign thread. Cancel terminates the child's whole process group.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from MedSegAILib.progress import parse_progress_line

SUCCEEDED, FAILED, CANCELLED = "succeeded", "failed", "cancelled"
_ERROR_PREFIXES = ("medsegai: error: ", "medsegai: internal error: ", "medsegai: ")


@dataclass
class Progress:
    """A parsed ``[ NN%] message`` line."""

    fraction: float
    message: str


@dataclass
class JobResult:
    """How a job ended: status, exit code, a one-line message for the user, the log."""

    status: str
    returncode: int | None
    message: str
    log: list[str] = field(default_factory=list)


class JobRunner(Protocol):
    """What the widget needs from a runner (the real one, or a fake in tests)."""

    def start(self, argv: Sequence[str], env: Mapping[str, str] | None = None) -> None: ...

    def poll(self) -> list[Progress]: ...

    def cancel(self) -> None: ...

    @property
    def result(self) -> JobResult | None: ...


def user_message(returncode: int, lines: Sequence[str]) -> str:
    """One line for the user from a failed run's output: the engine's error, never a traceback.

    Args:
        returncode: the child's exit code (2: input problem, 1: other failure).
        lines: the child's output lines.

    Returns:
        e.g. ``"Input problem: ct.nrrd: image is not 3-D; give a 3-D CT volume"``.
    """
    text = [line.strip() for line in lines if line.strip() and parse_progress_line(line) is None]
    detail = ""
    for line in reversed(text):
        for prefix in _ERROR_PREFIXES:
            if line.startswith(prefix):
                detail = line[len(prefix) :]
                break
        if detail:
            break
    if not detail and text:
        detail = text[-1]  # after a traceback this is the exception line, not the stack
    detail = detail or f"the engine stopped with exit code {returncode} and no message"
    if returncode == 2:
        return f"Input problem: {detail}"
    return f"Segmentation engine failed: {detail}"


class SubprocessRunner:
    """Runs one command at a time in its own process group, reading its output on a thread."""

    def __init__(self, terminate_timeout: float = 5.0) -> None:
        self._terminate_timeout = terminate_timeout
        self._process: subprocess.Popen | None = None
        self._events: queue.Queue[Progress] = queue.Queue()
        self._log: list[str] = []
        self._reader: threading.Thread | None = None
        self._cancelled = False
        self._result: JobResult | None = None

    def start(self, argv: Sequence[str], env: Mapping[str, str] | None = None) -> None:
        """Start ``argv``; raises ``RuntimeError`` if a job is still running."""
        if self._process is not None and self._result is None:
            raise RuntimeError("a job is already running")
        self._events, self._log, self._cancelled, self._result = queue.Queue(), [], False, None
        options = (
            {"start_new_session": True}
            if os.name == "posix"
            else {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP}
        )
        self._process = subprocess.Popen(
            list(argv),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=dict(env) if env is not None else None,
            text=True,
            bufsize=1,
            errors="replace",
            **options,
        )
        self._reader = threading.Thread(target=self._read, args=(self._process,), daemon=True)
        self._reader.start()

    def _read(self, process: subprocess.Popen) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            line = line.rstrip("\n")
            self._log.append(line)
            parsed = parse_progress_line(line)
            if parsed is not None:
                self._events.put(Progress(*parsed))
        returncode = process.wait()
        if self._cancelled:
            result = JobResult(CANCELLED, returncode, "Cancelled.", list(self._log))
        elif returncode == 0:
            result = JobResult(SUCCEEDED, 0, "Done.", list(self._log))
        else:
            result = JobResult(FAILED, returncode, user_message(returncode, self._log), list(self._log))
        self._result = result

    def poll(self) -> list[Progress]:
        """Progress reported since the last call (call from the GUI thread)."""
        events = []
        while True:
            try:
                events.append(self._events.get_nowait())
            except queue.Empty:
                return events

    @property
    def result(self) -> JobResult | None:
        """``None`` while running; then how it ended."""
        return self._result

    def cancel(self) -> None:
        """Terminate the child and everything it started; kill it if it does not stop."""
        process = self._process
        if process is None or process.poll() is not None:
            return
        self._cancelled = True
        self._signal_group(process, signal.SIGTERM if os.name == "posix" else None)
        try:
            process.wait(self._terminate_timeout)
        except subprocess.TimeoutExpired:
            self._signal_group(process, signal.SIGKILL if os.name == "posix" else None)
            process.wait()

    def wait(self, timeout: float | None = None) -> JobResult | None:
        """Block until the job has ended and its output is read (for scripts and tests)."""
        if self._reader is not None:
            self._reader.join(timeout)
        return self._result

    @staticmethod
    def _signal_group(process: subprocess.Popen, sig: int | None) -> None:
        try:
            if sig is None:
                process.terminate()
            else:
                os.killpg(process.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass
