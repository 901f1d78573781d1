"""How explanation maps are stored: float32 rounded to a fixed step, so they compress.

A float32 map resampled to a 512 x 512 x N input grid has noise in every low mantissa bit
and gzip barely shrinks it (writing one took longer than the whole segmentation). Rounded
to multiples of :data:`STORAGE_STEP` (2^-12 = 0.00024: far below any difference that
matters for entropy in nats or for a [0, 1] Grad-CAM map) the values are still float32
and exactly representable, and the files compress several-fold, several times faster.
"""

from __future__ import annotations

import numpy as np

STORAGE_STEP = 2.0**-12


def quantised_for_storage(values: np.ndarray) -> np.ndarray:
    """``values`` (float32) rounded to multiples of :data:`STORAGE_STEP`, in place when float32."""
    values = np.asarray(values, dtype=np.float32)
    np.multiply(values, 1.0 / STORAGE_STEP, out=values)
    np.rint(values, out=values)
    np.multiply(values, STORAGE_STEP, out=values)
    return values
