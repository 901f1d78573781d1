"""One lesion, one finding: outlines that touch or overlap are one object.

The detector outlines candidates one by one, best score first. A large or lobulated lesion
holds several candidates whose outlines cover parts of it; :class:`FindingOutlines` keeps the
outlines so far on the input grid, says which earlier outlines a new one touches (shares a voxel
with, or lies next to, in the 26-neighbourhood) and joins them into one outline, which is then
measured once, whole. A new outline that covers most of an earlier one
(:data:`SAME_OUTLINE_OVERLAP`) is another outline of that lesion, often grown from a
lower-scored candidate at a lower half-maximum level and leaking into the tissue around it: it
adds only its voxels at or above the earlier outline's level that connect to it.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

Box = tuple[slice, slice, slice]
_NEIGHBOURS = np.ones((3, 3, 3), dtype=bool)

SAME_OUTLINE_OVERLAP = 0.5
"""A new outline holding at least this share of an earlier outline's voxels is another outline of it."""


class FindingOutlines:
    """The outlines kept so far, as a map of owner keys on the input grid (0 = none)."""

    def __init__(self, shape: tuple[int, ...]) -> None:
        self.owner = np.zeros(shape, dtype=np.int32)
        self.boxes: dict[int, Box] = {}
        self.sizes: dict[int, int] = {}
        self.edges_hu: dict[int, float] = {}

    def touched_by(self, box: Box, mask: np.ndarray) -> list[int]:
        """The keys of the outlines that ``mask`` (in ``box``) overlaps or touches, in increasing order."""
        padded = _padded(box, self.owner.shape)
        around = np.zeros(tuple(s.stop - s.start for s in padded), dtype=bool)
        around[_inner(box, padded)] = mask
        around = ndimage.binary_dilation(around, _NEIGHBOURS)
        keys = np.unique(self.owner[padded][around])
        return [int(key) for key in keys if key]

    def redraws(self, keys: list[int], box: Box, mask: np.ndarray) -> bool:
        """Whether ``mask`` (in ``box``) holds most of one of the outlines ``keys``
        (:data:`SAME_OUTLINE_OVERLAP`)."""
        shared = np.bincount(self.owner[box][mask].ravel())
        return any(
            key < shared.size and shared[key] >= SAME_OUTLINE_OVERLAP * self.sizes[key] for key in keys
        )

    def edge_hu(self, keys: list[int]) -> float:
        """The highest half-maximum level among the outlines ``keys``."""
        return max(self.edges_hu[key] for key in keys)

    def joined(self, keys: list[int], box: Box, mask: np.ndarray) -> tuple[Box, np.ndarray]:
        """The union of ``mask`` and the outlines ``keys``, as a box and a mask in it; only the
        parts of ``mask`` connected to those outlines."""
        boxes = [box] + [self.boxes[key] for key in keys]
        union = tuple(
            slice(min(b[axis].start for b in boxes), max(b[axis].stop for b in boxes)) for axis in range(3)
        )
        earlier = np.isin(self.owner[union], keys)
        joined = earlier.copy()
        joined[_inner(box, union)] |= mask
        parts, _ = ndimage.label(joined, _NEIGHBOURS)
        return union, np.isin(parts, np.unique(parts[earlier]))

    def claim(self, key: int, box: Box, mask: np.ndarray, edge_hu: float, absorbed: list[int]) -> None:
        """Record ``mask`` (in ``box``, edge at ``edge_hu``) as outline ``key``, which replaces the
        outlines ``absorbed``."""
        for old in absorbed:
            del self.boxes[old], self.sizes[old], self.edges_hu[old]
        self.owner[box][mask] = key
        self.boxes[key] = box
        self.sizes[key] = int(np.count_nonzero(mask))
        self.edges_hu[key] = edge_hu


def _padded(box: Box, shape: tuple[int, ...]) -> Box:
    """``box`` grown by one voxel on every side, within ``shape``."""
    return tuple(slice(max(s.start - 1, 0), min(s.stop + 1, n)) for s, n in zip(box, shape))  # type: ignore[return-value]


def _inner(box: Box, outer: Box) -> Box:
    """``box`` as slices into the array of ``outer``, which contains it."""
    return tuple(slice(s.start - o.start, s.stop - o.start) for s, o in zip(box, outer))  # type: ignore[return-value]
