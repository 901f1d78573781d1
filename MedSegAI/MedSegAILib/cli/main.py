"""Entry point of the `medsegai` command: builds the parser and maps errors to exit codes.

Exit codes (CONTRACT.md): 0 success; 2 bad input or usage, with one line on stderr;
1 anything else, with a message. Set ``MEDSEGAI_DEBUG=1`` to see tracebacks.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from typing import Optional, Sequence

from .. import __version__
from ..errors import InputError, MedSegAIError
from . import corrections, demo, detect, evaluate, export_stl, import_seg, info, models, segment

COMMANDS = (segment, detect, export_stl, models, demo, evaluate, import_seg, info, corrections)


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors as one line and exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise InputError(f"{self.prog}: {message}; see `{self.prog} --help`")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="medsegai", description="Chest CT segmentation, nodule detection, explainability and surface export.")
    parser.add_argument("--version", action="version", version=f"medsegai {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for command in COMMANDS:
        command.register(subparsers)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the command line; returns the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if not getattr(args, "func", None):
            parser.print_help(sys.stderr)
            return 2
        return int(args.func(args) or 0)
    except MedSegAIError as error:
        print(f"medsegai: error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("medsegai: interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # noqa: BLE001 - the last line of defence for users
        if os.environ.get("MEDSEGAI_DEBUG"):
            traceback.print_exc()
        print(f"medsegai: internal error: {type(error).__name__}: {error} (set MEDSEGAI_DEBUG=1 for details)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
