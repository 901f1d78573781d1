"""Errors the engine raises on purpose, and the exit codes the CLI maps them to."""

from __future__ import annotations


class MedSegAIError(Exception):
    """An expected failure with a message fit for a user (CLI exit code 1)."""

    exit_code = 1


class InputError(MedSegAIError):
    """Bad input or usage (CLI exit code 2).

    The message names the file, what is wrong and what to do, on one line.
    """

    exit_code = 2


class Cancelled(MedSegAIError):
    """The user cancelled a running job."""

    exit_code = 130
