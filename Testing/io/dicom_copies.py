"""Editable copies of a DICOM series for tests that need a broken or altered series."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterable
from pathlib import Path

import pydicom

Rewrite = Callable[[int, pydicom.Dataset], None]


def copy_series(
    source: Path, target: Path, rewrite: Rewrite | None = None, drop: Iterable[int] = ()
) -> list[Path]:
    """Copy a DICOM series file by file (sorted by name), optionally editing headers.

    Args:
        source: the series folder.
        target: where to put the copies (created).
        rewrite: called as ``rewrite(index, dataset)`` before each copy is saved.
        drop: indices (in name order) of files not to copy.

    Returns:
        The copied files, in name order.
    """
    target.mkdir(parents=True, exist_ok=True)
    dropped = set(drop)
    copies = []
    for index, file in enumerate(sorted(source.iterdir())):
        if index in dropped:
            continue
        destination = target / file.name
        if rewrite is None:
            shutil.copyfile(file, destination)
        else:
            dataset = pydicom.dcmread(file)
            rewrite(index, dataset)
            dataset.save_as(destination)
        copies.append(destination)
    return copies
