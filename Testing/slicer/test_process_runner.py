"""The out-of-process runner with real child Python processes: progress, errors, cancel."""

from __future__ import annotations

import os
import sys
import textwrap
import time

import pytest
from MedSegAIModule.process_runner import CANCELLED, FAILED, SUCCEEDED, SubprocessRunner, user_message


def script(tmp_path, name: str, body: str) -> str:
    path = tmp_path / name
    path.write_text(textwrap.dedent(body))
    return str(path)


def test_progress_lines_are_parsed_and_a_clean_exit_succeeds(tmp_path):
    child = script(
        tmp_path,
        "progress.py",
        """
        import sys
        for percent, message in [(0, "load"), (42, "inference: window 3/8"), (100, "done")]:
            print(f"[{percent:3d}%] {message}", file=sys.stderr, flush=True)
        print("a line that is not progress")
    """,
    )
    runner = SubprocessRunner()
    runner.start([sys.executable, child])
    result = runner.wait(30)

    assert result.status == SUCCEEDED and result.returncode == 0
    progress = runner.poll()
    assert [(p.fraction, p.message) for p in progress] == [
        (0.0, "load"),
        (0.42, "inference: window 3/8"),
        (1.0, "done"),
    ]
    assert "a line that is not progress" in result.log
    assert runner.poll() == []


def test_an_input_error_exit_2_becomes_one_user_message(tmp_path):
    child = script(
        tmp_path,
        "bad_input.py",
        """
        import sys
        print("[ 10%] reading", file=sys.stderr)
        print(
            "medsegai: error: ct.nrrd: image is not 3-D (size (5, 5)); give a 3-D CT volume",
            file=sys.stderr,
        )
        sys.exit(2)
    """,
    )
    runner = SubprocessRunner()
    runner.start([sys.executable, child])
    result = runner.wait(30)

    assert result.status == FAILED and result.returncode == 2
    assert result.message == "Input problem: ct.nrrd: image is not 3-D (size (5, 5)); give a 3-D CT volume"


def test_a_crash_shows_the_exception_line_not_the_traceback(tmp_path):
    child = script(
        tmp_path,
        "crash.py",
        """
        def inner():
            raise MemoryError("cannot allocate 12 GB for the sliding window")
        inner()
    """,
    )
    runner = SubprocessRunner()
    runner.start([sys.executable, child])
    result = runner.wait(30)

    assert result.status == FAILED and result.returncode == 1
    assert (
        result.message
        == "Segmentation engine failed: MemoryError: cannot allocate 12 GB for the sliding window"
    )
    assert "Traceback" not in result.message and "\n" not in result.message


def test_messages_for_internal_errors_and_silent_failures():
    assert user_message(
        1,
        [
            "[ 50%] inference",
            "medsegai: internal error: RuntimeError: CUDA out of memory (set MEDSEGAI_DEBUG=1 for details)",
        ],
    ) == ("Segmentation engine failed: RuntimeError: CUDA out of memory (set MEDSEGAI_DEBUG=1 for details)")
    assert (
        user_message(137, [])
        == "Segmentation engine failed: the engine stopped with exit code 137 and no message"
    )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped by its parent) counts as gone.
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.skipif(os.name != "posix", reason="process groups are POSIX")
def test_cancel_stops_the_child_and_the_processes_it_started(tmp_path):
    pid_file = tmp_path / "grandchild.pid"
    child = script(
        tmp_path,
        "sleeper.py",
        f"""
        import subprocess, sys, time
        grandchild = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
        open({str(pid_file)!r}, "w").write(str(grandchild.pid))
        print("[  5%] started", file=sys.stderr, flush=True)
        time.sleep(120)
    """,
    )
    runner = SubprocessRunner(terminate_timeout=5)
    runner.start([sys.executable, child])
    deadline = time.monotonic() + 30
    while not (pid_file.exists() and pid_file.read_text()) and time.monotonic() < deadline:
        time.sleep(0.05)
    grandchild = int(pid_file.read_text())

    started = time.monotonic()
    runner.cancel()
    result = runner.wait(30)

    assert time.monotonic() - started < 10
    assert result.status == CANCELLED and result.message == "Cancelled."
    deadline = time.monotonic() + 10
    while _alive(grandchild) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(grandchild)


def test_cancel_kills_a_child_that_ignores_terminate(tmp_path):
    child = script(
        tmp_path,
        "stubborn.py",
        """
        import signal, sys, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print("[  1%] ignoring SIGTERM", file=sys.stderr, flush=True)
        time.sleep(120)
    """,
    )
    runner = SubprocessRunner(terminate_timeout=0.5)
    runner.start([sys.executable, child])
    deadline = time.monotonic() + 30
    while not runner.poll() and time.monotonic() < deadline:
        time.sleep(0.05)
    runner.cancel()
    assert runner.wait(30).status == CANCELLED


def test_one_job_at_a_time(tmp_path):
    child = script(tmp_path, "sleep.py", "import time; time.sleep(60)\n")
    runner = SubprocessRunner(terminate_timeout=2)
    runner.start([sys.executable, child])
    with pytest.raises(RuntimeError, match="already running"):
        runner.start([sys.executable, child])
    runner.cancel()
    runner.wait(30)
