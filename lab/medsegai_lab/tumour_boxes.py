"""Lung-PET-CT-Dx tumour boxes: read them, find their slices, and compare a mask with them.

Each annotation is a PASCAL VOC XML named by the SOP Instance UID of the annotated slice, with
one ``object`` per box (``name``, pixel ``xmin/ymin/xmax/ymax``). Boxes are read as inclusive
0-based pixel ranges: columns ``xmin..xmax``, rows ``ymin..ymax``.

A study may hold several reconstructions of one acquisition (lung and soft-tissue kernels):
a box is placed on the series that holds its UID and, at the same patient position, on every
other series with the same in-plane geometry.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medsegai_lab.lidc_consensus import CtGrid

PixelBox = tuple[int, int, int, int]  # xmin, ymin, xmax, ymax (inclusive)


@dataclass(frozen=True)
class TumourBox:
    """One box drawn on the slice with SOP Instance UID ``sop_uid``."""

    sop_uid: str
    label: str
    pixels: PixelBox


@dataclass(frozen=True)
class PlacedBox:
    """A box and its slice index in each series it lies on (its own series first)."""

    box: TumourBox
    series: str
    slices: dict[str, int]


@dataclass(frozen=True)
class BoxOverlap:
    """A mask's slice against a box: the IoU of the mask's bounding box, and any overlap at all."""

    iou: float
    overlaps: bool
    mask_box: PixelBox | None


def read_boxes(folder: str | Path) -> list[TumourBox]:
    """Every box of every ``*.xml`` in ``folder`` (file name = the slice's SOP Instance UID)."""
    boxes = []
    for path in sorted(Path(folder).glob("*.xml")):
        for element in ET.parse(path).getroot().findall("object"):
            edges = element.find("bndbox")
            pixels = tuple(int(float(edges.findtext(tag))) for tag in ("xmin", "ymin", "xmax", "ymax"))
            boxes.append(TumourBox(path.stem, element.findtext("name", "").strip(), pixels))  # type: ignore[arg-type]
    return boxes


def _same_plane(a: CtGrid, b: CtGrid) -> bool:
    """Same rows, columns, pixel spacing, in-plane origin and orientation."""
    return (
        a.image.GetSize()[:2] == b.image.GetSize()[:2]
        and np.allclose(a.image.GetSpacing()[:2], b.image.GetSpacing()[:2])
        and np.allclose(a.image.GetOrigin()[:2], b.image.GetOrigin()[:2], atol=0.01)
        and np.allclose(a.image.GetDirection(), b.image.GetDirection(), atol=1e-4)
    )


def place_boxes(boxes: list[TumourBox], grids: Mapping[str, CtGrid]) -> list[PlacedBox]:
    """Each box on the series holding its UID, and on the others' slice at the same position.

    Boxes whose UID no series holds are left out.
    """
    placed = []
    for box in boxes:
        home = next((name for name, grid in grids.items() if box.sop_uid in grid.sop_uids), None)
        if home is None:
            continue
        k = grids[home].sop_uids.index(box.sop_uid)
        z = float(grids[home].z_positions[k])
        slices = {home: k}
        for name, grid in grids.items():
            if name != home and _same_plane(grid, grids[home]):
                other = grid.slice_index("", z)
                if other is not None:
                    slices[name] = other
        placed.append(PlacedBox(box, home, slices))
    return placed


def box_iou(a: PixelBox, b: PixelBox) -> float:
    """Intersection over union of two inclusive pixel boxes."""
    width = min(a[2], b[2]) - max(a[0], b[0]) + 1
    height = min(a[3], b[3]) - max(a[1], b[1]) + 1
    inter = max(width, 0) * max(height, 0)

    def area(box: PixelBox) -> int:
        return (box[2] - box[0] + 1) * (box[3] - box[1] + 1)

    return inter / (area(a) + area(b) - inter)


def mask_box(plane: np.ndarray) -> PixelBox | None:
    """The inclusive pixel box of a ``(rows, columns)`` mask, or None when it is empty."""
    rows, columns = np.nonzero(plane)
    if len(rows) == 0:
        return None
    return int(columns.min()), int(rows.min()), int(columns.max()), int(rows.max())


def box_overlap(box: PixelBox, plane: np.ndarray) -> BoxOverlap:
    """Compare the mask on one slice (``(rows, columns)``) with a box."""
    xmin, ymin, xmax, ymax = box
    bounds = mask_box(plane)
    inside = bool(plane[ymin : ymax + 1, xmin : xmax + 1].any())
    return BoxOverlap(0.0 if bounds is None else box_iou(box, bounds), inside, bounds)
