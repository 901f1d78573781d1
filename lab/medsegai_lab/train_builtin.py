"""Rebuild the built-in chest CT model from the project's shared data (seeded, resumable from nothing).

    PYTHONPATH=lab .venv/bin/python -m medsegai_lab.train_builtin --out runs/chest_ct --seed 0 --minutes 40

Prepares (and caches under ``.cache/training``) the training cases of :mod:`.datasets`, adds the
corrected cases of ``--corrections DIR`` when given, and trains with
:func:`MedSegAILib.training.train.train`. The model card's metrics come from :mod:`.evaluate_model`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from MedSegAILib.io.shared_data import shared_data_path
from MedSegAILib.training.corrections import load_correction_cases
from MedSegAILib.training.train import add_training_arguments, train_from_arguments

from medsegai_lab.datasets import load_training_cases

REPOSITORY = Path(__file__).resolve().parents[2]
DEFAULT_CACHE = REPOSITORY / ".cache" / "training"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m medsegai_lab.train_builtin",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_training_arguments(parser)
    parser.add_argument(
        "--data",
        type=Path,
        default=shared_data_path(),
        help="shared data folder (default $MEDSEGAI_SHARED_DATA, else ../shared/data)",
    )
    parser.add_argument(
        "--cache", type=Path, default=DEFAULT_CACHE, help="prepared-case cache (default .cache/training)"
    )
    parser.add_argument(
        "--init", type=Path, default=None, help="start from these weights (safetensors state_dict)"
    )
    parser.add_argument(
        "--corrections",
        type=Path,
        default=None,
        metavar="DIR",
        help="also train on the corrected cases of DIR (written by `medsegai corrections export`)",
    )
    args = parser.parse_args(argv)
    cases = load_training_cases(
        args.data,
        args.spacing,
        args.cache,
        progress=lambda f, m: print(f"[{int(100 * f):3d}%] {m}", flush=True),
    )
    if args.corrections is not None:
        cases += load_correction_cases(args.corrections, args.spacing)
    words = sys.argv[1:] if argv is None else list(argv)
    train_from_arguments(args, cases, args.init, "python -m medsegai_lab.train_builtin " + " ".join(words))
    return 0


if __name__ == "__main__":
    sys.exit(main())
