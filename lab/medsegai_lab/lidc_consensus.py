"""LIDC-IDRI reader contours as masks on the CT grid, their 50 % consensus, and how well the
readers agree with each other.

The LIDC XML (namespace ``http://www.nih.gov``) holds one ``readingSession`` per radiologist.
Each ``unblindedReadNodule`` a reader judged to be 3 mm or more is outlined by ``roi`` contours,
one per slice: ``edgeMap`` pixel ``xCoord`` (column) / ``yCoord`` (row), the slice's
``imageSOP_UID`` and ``imageZposition``, and ``inclusion`` (``FALSE``: a hole to cut out).
Smaller nodules are a single point and non-nodules a ``locus`` point; both are kept as
:class:`PointMark` (no contour, so no mask).

Masks are *voxel sets*: sorted unique flat indices into the grid's ``[k, j, i]`` array, which
keeps a scan's dozen reader masks small. The grid is assumed axial and axis-aligned, as LIDC's
series are; long axes are measured in the axial plane.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from scipy import ndimage
from scipy.spatial import ConvexHull, QhullError

NAMESPACE = {"lidc": "http://www.nih.gov"}
SOP_INSTANCE_UID_TAG = "0008|0018"


@dataclass(frozen=True)
class Roi:
    """One reader's contour of a nodule on one slice."""

    z_position: float
    sop_uid: str
    inclusion: bool
    points_xy: np.ndarray  # (n, 2) integer pixel (column, row)


@dataclass(frozen=True)
class ReaderNodule:
    """One reader's nodule: its contours and characteristics (texture, malignancy, ...)."""

    reader: int
    nodule_id: str
    rois: tuple[Roi, ...]
    characteristics: dict[str, int]

    @property
    def contoured(self) -> bool:
        """True for an outlined (>= 3 mm) nodule, False for a one-point (< 3 mm) mark."""
        return any(len(roi.points_xy) > 1 for roi in self.rois)


@dataclass(frozen=True)
class PointMark:
    """A one-point mark: a nodule under 3 mm (``small nodule``) or a ``non-nodule``."""

    reader: int
    kind: str
    z_position: float
    sop_uid: str
    x: int
    y: int


@dataclass(frozen=True)
class LidcReading:
    """All reading sessions of one LIDC XML."""

    readers: int
    nodules: tuple[ReaderNodule, ...]
    points: tuple[PointMark, ...]


@dataclass(frozen=True)
class CtGrid:
    """The CT grid the contours are drawn on: geometry and each slice's SOP Instance UID."""

    image: sitk.Image
    sop_uids: tuple[str, ...]

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(k, j, i)``: the numpy shape of the volume."""
        i, j, k = self.image.GetSize()
        return k, j, i

    @property
    def spacing(self) -> tuple[float, float, float]:
        """``(i, j, k)`` voxel spacing in mm."""
        return tuple(float(s) for s in self.image.GetSpacing())  # type: ignore[return-value]

    @property
    def z_positions(self) -> np.ndarray:
        """Patient z (mm) of each slice."""
        return np.array(
            [self.image.TransformIndexToPhysicalPoint((0, 0, k))[2] for k in range(self.shape[0])]
        )

    def slice_index(self, sop_uid: str, z_position: float) -> int | None:
        """The slice with this SOP Instance UID, else the one within half a slice of ``z_position``."""
        if sop_uid in self.sop_uids:
            return self.sop_uids.index(sop_uid)
        distances = np.abs(self.z_positions - z_position)
        nearest = int(np.argmin(distances))
        return nearest if distances[nearest] <= 0.5 * self.spacing[2] else None


@dataclass
class PhysicalNodule:
    """One nodule as several readers marked it: each reader's voxel set."""

    members: list[ReaderNodule]
    voxels: dict[int, np.ndarray] = field(default_factory=dict)  # reader -> voxel set

    @property
    def readers(self) -> int:
        """How many readers outlined it."""
        return len(self.voxels)


@dataclass(frozen=True)
class ReaderAgreement:
    """One reader against the 50 % consensus of the nodule's other readers."""

    reader: int
    dice: float
    long_axis_mm: float
    others_long_axis_mm: float

    @property
    def long_axis_difference_mm(self) -> float:
        """This reader's long axis minus the others' consensus long axis."""
        return self.long_axis_mm - self.others_long_axis_mm


def _text(element: ET.Element, tag: str) -> str:
    return (element.findtext(f"lidc:{tag}", default="", namespaces=NAMESPACE) or "").strip()


def parse_lidc_xml(source: str | Path) -> LidcReading:
    """Parse an LIDC XML file (a path) or its text (a string that starts with ``<``)."""
    text = source if isinstance(source, str) and source.lstrip().startswith("<") else Path(source).read_text()
    root = ET.fromstring(text)
    sessions = root.findall("lidc:readingSession", NAMESPACE)
    nodules: list[ReaderNodule] = []
    points: list[PointMark] = []
    for reader, session in enumerate(sessions):
        for element in session.findall("lidc:unblindedReadNodule", NAMESPACE):
            rois = tuple(_parse_roi(roi) for roi in element.findall("lidc:roi", NAMESPACE))
            characteristics = element.find("lidc:characteristics", NAMESPACE)
            values = {
                child.tag.split("}")[-1]: int(child.text)
                for child in (characteristics if characteristics is not None else [])
                if child.text and child.text.strip().isdigit()
            }
            nodule = ReaderNodule(reader, _text(element, "noduleID"), rois, values)
            if nodule.contoured:
                nodules.append(nodule)
            else:
                points.extend(_point(reader, "small nodule", roi, roi.points_xy[0]) for roi in rois)
        for element in session.findall("lidc:nonNodule", NAMESPACE):
            locus = element.find("lidc:locus", NAMESPACE)
            xy = np.array([int(_text(locus, "xCoord")), int(_text(locus, "yCoord"))])
            roi = Roi(float(_text(element, "imageZposition")), _text(element, "imageSOP_UID"), True, xy[None])
            points.append(_point(reader, "non-nodule", roi, xy))
    return LidcReading(len(sessions), tuple(nodules), tuple(points))


def _parse_roi(element: ET.Element) -> Roi:
    edges = element.findall("lidc:edgeMap", NAMESPACE)
    points = np.array([[int(_text(e, "xCoord")), int(_text(e, "yCoord"))] for e in edges], dtype=int)
    return Roi(
        z_position=float(_text(element, "imageZposition")),
        sop_uid=_text(element, "imageSOP_UID"),
        inclusion=_text(element, "inclusion").upper() == "TRUE",
        points_xy=points.reshape(-1, 2),
    )


def _point(reader: int, kind: str, roi: Roi, xy: np.ndarray) -> PointMark:
    return PointMark(reader, kind, roi.z_position, roi.sop_uid, int(xy[0]), int(xy[1]))


def read_ct_grid(folder: str | Path) -> CtGrid:
    """Read the DICOM series in ``folder`` (SimpleITK, GDCM) with each slice's SOP Instance UID."""
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(folder)))
    reader.MetaDataDictionaryArrayUpdateOn()
    image = reader.Execute()
    uids = tuple(reader.GetMetaData(k, SOP_INSTANCE_UID_TAG).strip() for k in range(image.GetDepth()))
    return CtGrid(image, uids)


def _outline(points_xy: np.ndarray, shape_rc: tuple[int, int]) -> np.ndarray:
    """The closed contour: consecutive points (and the last to the first) joined by 8-connected lines."""
    plane = np.zeros(shape_rc, dtype=bool)
    closed = np.vstack([points_xy, points_xy[:1]])
    for (x0, y0), (x1, y1) in zip(closed[:-1], closed[1:]):
        steps = max(abs(x1 - x0), abs(y1 - y0)) + 1
        rows = np.rint(np.linspace(y0, y1, steps)).astype(int)
        plane[rows, np.rint(np.linspace(x0, x1, steps)).astype(int)] = True
    return plane


def fill_contour(points_xy: np.ndarray, shape_rc: tuple[int, int]) -> np.ndarray:
    """The pixels of a closed contour and its inside, on a ``(rows, columns)`` plane.

    LIDC edge maps are the nodule's outermost pixels, so the boundary is included.
    """
    return ndimage.binary_fill_holes(_outline(points_xy, shape_rc))


def _hole(points_xy: np.ndarray, shape_rc: tuple[int, int]) -> np.ndarray:
    """The inside of an exclusion contour: its edge pixels stay with the nodule."""
    outline = _outline(points_xy, shape_rc)
    return ndimage.binary_fill_holes(outline) & ~outline


def rasterise(nodule: ReaderNodule, grid: CtGrid) -> np.ndarray:
    """The reader's nodule as a voxel set on ``grid``: filled inclusions minus the holes.

    Raises:
        ValueError: a contour's slice is neither found by SOP UID nor by z position.
    """
    _, rows, columns = grid.shape
    planes: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for roi in nodule.rois:
        k = grid.slice_index(roi.sop_uid, roi.z_position)
        if k is None:
            raise ValueError(
                f"reader {nodule.reader} nodule {nodule.nodule_id}: no slice at z {roi.z_position}"
            )
        inside, holes = planes.setdefault(
            k, (np.zeros((rows, columns), bool), np.zeros((rows, columns), bool))
        )
        if roi.inclusion:
            inside |= fill_contour(roi.points_xy, (rows, columns))
        else:
            holes |= _hole(roi.points_xy, (rows, columns))
    flat = [k * rows * columns + np.flatnonzero(inside & ~holes) for k, (inside, holes) in planes.items()]
    return np.unique(np.concatenate(flat)) if flat else np.zeros(0, dtype=np.int64)


def point_voxel(point: PointMark, grid: CtGrid) -> int | None:
    """The flat voxel index of a point mark, or None when its slice is not in the grid."""
    k = grid.slice_index(point.sop_uid, point.z_position)
    return None if k is None else int(np.ravel_multi_index((k, point.y, point.x), grid.shape))


def dice(a: np.ndarray, b: np.ndarray) -> float:
    """Dice of two voxel sets (1.0 when both are empty)."""
    if len(a) + len(b) == 0:
        return 1.0
    return 2.0 * len(np.intersect1d(a, b, assume_unique=True)) / (len(a) + len(b))


def overlaps(a: np.ndarray, b: np.ndarray) -> bool:
    """True if the voxel sets share a voxel."""
    return bool(len(np.intersect1d(a, b, assume_unique=True)))


def centroid_mm(voxels: np.ndarray, grid: CtGrid) -> np.ndarray:
    """Mean voxel centre of a voxel set in grid millimetres (i, j, k order, from the grid's corner)."""
    kji = np.column_stack(np.unravel_index(voxels, grid.shape))
    return kji[:, ::-1].mean(axis=0) * np.array(grid.spacing)


def long_axis_mm(voxels: np.ndarray, grid: CtGrid) -> float:
    """Longest in-plane diameter over the axial slices (0.0 for an empty set).

    Between two pixels it is the distance of their centres plus one pixel's width along that
    line, so a digitised disk of diameter D measures D (the product's convention too).
    """
    if len(voxels) == 0:
        return 0.0
    k, j, i = np.unravel_index(voxels, grid.shape)
    steps = np.array(grid.spacing[:2])
    best = 0.0
    for index in np.unique(k):
        points = np.column_stack([i[k == index], j[k == index]]).astype(float)
        if len(points) >= 4:
            try:
                points = points[ConvexHull(points).vertices]
            except QhullError:  # collinear pixels: keep them all
                pass
        mm = points * steps
        differences = mm[:, None, :] - mm[None, :, :]
        distances = np.linalg.norm(differences, axis=2)
        a, b = np.unravel_index(np.argmax(distances), distances.shape)
        if distances[a, b] == 0:
            best = max(best, float(steps.max()))
            continue
        direction = differences[a, b] / distances[a, b]
        best = max(best, float(distances[a, b] + np.abs(direction * steps).sum()))
    return best


def group_nodules(nodules: Sequence[ReaderNodule], grid: CtGrid) -> list[PhysicalNodule]:
    """Group the readers' contoured nodules into physical nodules.

    Two marks of different readers are one nodule when their masks overlap, or when their
    centroids are closer than the larger mark's radius (half its long axis). Groups are the
    connected sets of that relation; a reader with two marks in one group counts once, with
    the union of the two.
    """
    voxels = [rasterise(nodule, grid) for nodule in nodules]
    centres = [centroid_mm(v, grid) for v in voxels]
    radii = [0.5 * long_axis_mm(v, grid) for v in voxels]
    parent = list(range(len(nodules)))

    def root(a: int) -> int:
        while parent[a] != a:
            a = parent[a]
        return a

    for a in range(len(nodules)):
        for b in range(a + 1, len(nodules)):
            if nodules[a].reader == nodules[b].reader:
                continue
            larger = a if len(voxels[a]) >= len(voxels[b]) else b
            close = np.linalg.norm(centres[a] - centres[b]) < radii[larger]
            if close or overlaps(voxels[a], voxels[b]):
                parent[root(b)] = root(a)
    groups: dict[int, PhysicalNodule] = {}
    for index, nodule in enumerate(nodules):
        group = groups.setdefault(root(index), PhysicalNodule(members=[]))
        group.members.append(nodule)
        previous = group.voxels.get(nodule.reader, np.zeros(0, dtype=np.int64))
        group.voxels[nodule.reader] = np.union1d(previous, voxels[index])
    return list(groups.values())


def consensus(voxel_sets: Sequence[np.ndarray], fraction: float = 0.5) -> np.ndarray:
    """Voxels marked in at least ``fraction`` of the sets."""
    if not voxel_sets:
        return np.zeros(0, dtype=np.int64)
    values, counts = np.unique(np.concatenate(voxel_sets), return_counts=True)
    return values[counts >= fraction * len(voxel_sets)]


def consensus_nodules(
    groups: Sequence[PhysicalNodule], grid: CtGrid, min_readers: int = 3
) -> list[PhysicalNodule]:
    """The physical nodules that at least ``min_readers`` readers outlined, in slice order."""
    kept = [group for group in groups if group.readers >= min_readers]
    return sorted(kept, key=lambda group: centroid_mm(consensus(list(group.voxels.values())), grid)[2])


def reader_agreement(group: PhysicalNodule, grid: CtGrid, fraction: float = 0.5) -> list[ReaderAgreement]:
    """Each reader's mask against the ``fraction`` consensus of the nodule's other readers."""
    rows = []
    for reader, own in group.voxels.items():
        others = consensus([v for r, v in group.voxels.items() if r != reader], fraction)
        rows.append(
            ReaderAgreement(reader, dice(own, others), long_axis_mm(own, grid), long_axis_mm(others, grid))
        )
    return rows
