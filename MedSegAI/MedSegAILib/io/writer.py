"""Write label maps and float maps on exactly a reference volume's grid, atomically."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from .atomic import atomic_path
from .volume import Volume


def _write(volume: Volume, path: str | os.PathLike) -> Path:
    path = Path(path)
    with atomic_path(path) as temporary:
        sitk.WriteImage(volume.to_sitk(), str(temporary), useCompression=True)
    return path


def write_label_map(labels: np.ndarray, reference: Volume, path: str | os.PathLike) -> Path:
    """Write an integer label map (``[k, j, i]``, same shape as ``reference``) on its grid.

    The smallest unsigned integer type that holds the largest label is used.
    """
    labels = np.asarray(labels)
    if labels.size and labels.min() < 0:
        raise ValueError("label maps must not contain negative values")
    dtype = np.uint8 if labels.size == 0 or labels.max() < 256 else np.uint16
    return _write(reference.with_array(labels.astype(dtype, copy=False)), path)


def write_float_map(values: np.ndarray, reference: Volume, path: str | os.PathLike) -> Path:
    """Write a float32 map (``[k, j, i]``, same shape as ``reference``) on its grid."""
    return _write(reference.with_array(np.asarray(values, dtype=np.float32)), path)
