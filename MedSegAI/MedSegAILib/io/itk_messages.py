"""ITK's messages: one readable reason from an exception, and its direct stderr output captured.

Some ITK readers (MetaImage, GDCM) print to the C-level stderr as well as raising. The CLI
promises exactly one line on stderr for bad input, so reads run inside
:func:`call_itk`: the text is replayed when the call succeeds and folded into the
error message when it fails.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def itk_reason(error: BaseException, captured: str = "") -> str:
    """The informative part of an ITK exception message (plus captured output), on one line.

    Args:
        error: the ``RuntimeError`` SimpleITK raised.
        captured: what ITK printed on stderr during the call, if anything.

    Returns:
        The text after ``ERROR: <object>):`` when present, else the last non-empty line,
        followed by the first line ITK printed, if any.
    """
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    reason = lines[-1] if lines else type(error).__name__
    for line in lines:
        if "ERROR:" in line:
            reason = line.split("ERROR:", 1)[1].split("): ", 1)[-1].strip()
            break
    printed = [line.strip() for line in captured.splitlines() if line.strip()]
    return f"{reason}: {printed[0]}" if printed else reason


class ItkReadError(Exception):
    """An ITK call failed; ``str(error)`` is one line saying why."""


def call_itk(function: Callable[..., T], *args: Any) -> T:
    """Call a SimpleITK function with its C-level stderr output captured.

    Args:
        function: e.g. ``sitk.ReadImage`` or a reader's ``Execute``.
        args: passed on to ``function``.

    Returns:
        What ``function`` returns; anything ITK printed is then written back to stderr.

    Raises:
        ItkReadError: ``function`` raised ``RuntimeError``; the message is one line made
            from the exception and what ITK printed.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as sink:
        os.dup2(sink.fileno(), 2)
        try:
            result = function(*args)
        except RuntimeError as error:
            failure: RuntimeError | None = error
        else:
            failure = None
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        sink.seek(0)
        printed = sink.read().decode("utf-8", "replace")
    if failure is not None:
        raise ItkReadError(itk_reason(failure, printed)) from None
    if printed:
        sys.stderr.write(printed)
    return result
