"""Arguments and helpers shared by several subcommands."""

from __future__ import annotations

import argparse

from ..progress import ProgressCallback, StderrProgress, no_progress


def add_input_arguments(parser: argparse.ArgumentParser) -> None:
    """``INPUT`` plus ``--series``, as CONTRACT.md defines them."""
    parser.add_argument(
        "input",
        metavar="INPUT",
        help="CT volume: NIfTI (.nii/.nii.gz), NRRD (.nrrd/.nhdr), MetaImage (.mha/.mhd), "
        "a folder with one DICOM series, or one file of a DICOM series",
    )
    parser.add_argument(
        "--series",
        metavar="UID",
        help="the DICOM SeriesInstanceUID to read when a folder holds several series",
    )


def add_output_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-o", "--output", metavar="OUTDIR", required=True, help="output folder (created if missing)"
    )


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """``--model``, ``--device``, ``--quiet``."""
    parser.add_argument(
        "--model",
        metavar="NAME_OR_PATH",
        default=None,
        help="a model from `medsegai models list`, or a path to a model folder "
        "(default: the built-in chest CT model)",
    )
    parser.add_argument(
        "--device",
        default="auto",
        metavar="auto|cpu|cuda[:N]|mps",
        help="where to run the network; auto picks a working GPU, else the CPU (default: auto)",
    )
    add_quiet_argument(parser)


def add_quiet_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--quiet", action="store_true", help="no progress output (progress goes to stderr otherwise)"
    )


def progress_for(args: argparse.Namespace) -> ProgressCallback:
    """Stderr progress unless ``--quiet`` was given."""
    return no_progress if getattr(args, "quiet", False) else StderrProgress()
