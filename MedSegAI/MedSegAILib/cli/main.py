"""Entry point of the `medsegai` command: builds the parser and maps errors to exit codes.

Exit codes (CONTRACT.md): 0 success; 2 bad input or usage, with one line on stderr;
1 anything else, with a message. Set ``MEDSEGAI_DEBUG=1`` to see tracebacks.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import traceback
from collections.abc import Sequence

from .. import __version__
from ..errors import InputError, MedSegAIError

# name -> (module in this package, one-line help). Only the module of the command being run
# is imported, so `medsegai info` or `medsegai --help` do not pay for importing torch.
COMMANDS: dict[str, tuple[str, str]] = {
    "segment": ("segment", "segment a CT volume (lungs, nodules)"),
    "detect": ("detect", "find lung nodules"),
    "export-stl": ("export_stl", "export one closed surface mesh per label"),
    "models": ("models", "list, show, import and download models"),
    "demo": ("demo", "run segment + detect end to end on bundled data"),
    "evaluate": ("evaluate", "evaluate predictions against references (FROC for detections)"),
    "import-seg": ("import_seg", "convert a DICOM SEG into a label map and labels.json"),
    "info": ("info", "check an input: size, spacing, origin, direction, HU range, series UID"),
    "corrections": ("corrections", "keep corrected masks as training data (add, list, export)"),
}


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors as one line and exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise InputError(f"{self.prog}: {message}; see `{self.prog} --help`")


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The `medsegai` parser; with ``argv``, only the command named there is fully built."""
    parser = _Parser(
        prog="medsegai",
        description="Chest CT segmentation, nodule detection, explainability and surface export.",
    )
    parser.add_argument("--version", action="version", version=f"medsegai {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    wanted = None if argv is None else next((arg for arg in argv if arg in COMMANDS), "")
    for name, (module, help_text) in COMMANDS.items():
        if wanted is None or wanted == name:
            importlib.import_module(f"{__package__}.{module}").register(subparsers)
        else:
            subparsers.add_parser(name, help=help_text)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(argv)
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
        print(
            f"medsegai: internal error: {type(error).__name__}: {error} (set MEDSEGAI_DEBUG=1 for details)",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())
