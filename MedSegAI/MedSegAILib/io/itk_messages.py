"""Turn SimpleITK/ITK exception text (many lines, with source paths) into one readable reason."""

from __future__ import annotations


def itk_reason(error: BaseException) -> str:
    """The informative part of an ITK exception message, on one line.

    Args:
        error: the ``RuntimeError`` SimpleITK raised.

    Returns:
        The text after ``ERROR: <object>):`` when present, else the last non-empty line.
    """
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    for line in lines:
        if "ERROR:" in line:
            return line.split("ERROR:", 1)[1].split("): ", 1)[-1].strip()
    return lines[-1] if lines else type(error).__name__
