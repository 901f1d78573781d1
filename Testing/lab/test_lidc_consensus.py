"""LIDC reader contours become masks, a 50 % consensus and a measure of the readers' agreement."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
from medsegai_lab.lidc_consensus import (
    CtGrid,
    consensus,
    consensus_nodules,
    dice,
    fill_contour,
    group_nodules,
    long_axis_mm,
    parse_lidc_xml,
    read_ct_grid,
    reader_agreement,
)

SLICES = 4
Z_ORIGIN = -10.0
SLICE_SPACING = 2.0


def tiny_grid() -> CtGrid:
    """A 4-slice 16x16 axial grid, 1 mm pixels, 2 mm slices, slice k has SOP UID 1.2.3.k."""
    image = sitk.Image(16, 16, SLICES, sitk.sitkInt16)
    image.SetSpacing((1.0, 1.0, SLICE_SPACING))
    image.SetOrigin((0.0, 0.0, Z_ORIGIN))
    return CtGrid(image, tuple(f"1.2.3.{k}" for k in range(SLICES)))


def square(x0: int, y0: int, x1: int, y1: int) -> list[tuple[int, int]]:
    """The boundary pixels of the square x0..x1, y0..y1, in order around it."""
    top = [(x, y0) for x in range(x0, x1 + 1)]
    right = [(x1, y) for y in range(y0 + 1, y1 + 1)]
    bottom = [(x, y1) for x in range(x1 - 1, x0 - 1, -1)]
    left = [(x0, y) for y in range(y1 - 1, y0, -1)]
    return top + right + bottom + left


def roi_xml(k: int, points: list[tuple[int, int]], inclusion: bool = True, uid: str | None = None) -> str:
    edges = "".join(f"<edgeMap><xCoord>{x}</xCoord><yCoord>{y}</yCoord></edgeMap>" for x, y in points)
    return (
        f"<roi><imageZposition>{Z_ORIGIN + SLICE_SPACING * k}</imageZposition>"
        f"<imageSOP_UID>{uid or f'1.2.3.{k}'}</imageSOP_UID>"
        f"<inclusion>{'TRUE' if inclusion else 'FALSE'}</inclusion>{edges}</roi>"
    )


def lidc_xml(readers: list[list[str]]) -> str:
    """An LIDC XML with one reading session per reader; each nodule is a string of roi elements."""
    sessions = ""
    for reader, nodules in enumerate(readers):
        body = "".join(
            f"<unblindedReadNodule><noduleID>{reader}-{n}</noduleID>"
            f"<characteristics><texture>5</texture></characteristics>{rois}</unblindedReadNodule>"
            for n, rois in enumerate(nodules)
        )
        reader_id = f"<servicingRadiologistID>{reader}</servicingRadiologistID>"
        sessions += f"<readingSession>{reader_id}{body}</readingSession>"
    return f'<?xml version="1.0"?><LidcReadMessage xmlns="http://www.nih.gov">{sessions}</LidcReadMessage>'


def nodule_on_two_slices(x0: int, y0: int, x1: int, y1: int) -> str:
    return roi_xml(1, square(x0, y0, x1, y1)) + roi_xml(2, square(x0, y0, x1, y1))


def test_a_filled_contour_includes_its_boundary_pixels():
    plane = fill_contour(np.array(square(2, 3, 5, 6)), (16, 16))
    assert plane.sum() == 16
    assert plane[3, 2] and plane[6, 5]  # corners: (row y, column x)
    assert not plane[2, 2] and not plane[7, 5]


def test_an_exclusion_contour_cuts_out_its_inside_and_keeps_its_edge_with_the_nodule():
    grid = tiny_grid()
    rois = roi_xml(1, square(1, 1, 8, 8)) + roi_xml(1, square(3, 3, 6, 6), inclusion=False)
    [nodule] = parse_lidc_xml(lidc_xml([[rois]])).nodules
    [group] = group_nodules([nodule], grid)
    mask = np.zeros(grid.shape, bool).ravel()
    mask[group.voxels[0]] = True
    plane = mask.reshape(grid.shape)[1]
    assert plane.sum() == 64 - 4
    assert plane[3, 3] and not plane[4, 4]


def test_a_contour_whose_uid_is_not_in_the_series_is_placed_by_its_z_position():
    grid = tiny_grid()
    rois = roi_xml(2, square(2, 2, 5, 5), uid="9.9.9")
    [group] = group_nodules(parse_lidc_xml(lidc_xml([[rois]])).nodules, grid)
    k = np.unravel_index(group.voxels[0], grid.shape)[0]
    assert set(k.tolist()) == {2}


def test_a_digitised_square_measures_its_outer_diagonal():
    grid = tiny_grid()
    [group] = group_nodules(parse_lidc_xml(lidc_xml([[roi_xml(0, square(2, 2, 5, 5))]])).nodules, grid)
    assert long_axis_mm(group.voxels[0], grid) == pytest.approx(4 * np.sqrt(2))


def test_the_consensus_of_four_readers_is_what_at_least_two_of_them_marked():
    grid = tiny_grid()
    squares = [(6, 6, 7, 7), (5, 5, 8, 8), (4, 4, 9, 9), (3, 3, 10, 10)]  # nested, smallest first
    readers = [[nodule_on_two_slices(*s)] for s in squares]
    [group] = group_nodules(parse_lidc_xml(lidc_xml(readers)).nodules, grid)
    assert group.readers == 4
    assert np.array_equal(consensus(list(group.voxels.values())), group.voxels[2])
    assert dice(group.voxels[2], group.voxels[2]) == 1.0


def test_readers_who_agree_score_a_dice_of_one_against_the_others():
    grid = tiny_grid()
    readers = [[nodule_on_two_slices(3, 3, 9, 9)] for _ in range(4)]
    [group] = group_nodules(parse_lidc_xml(lidc_xml(readers)).nodules, grid)
    for agreement in reader_agreement(group, grid):
        assert agreement.dice == 1.0
        assert agreement.long_axis_difference_mm == 0.0


def test_the_reader_who_draws_a_larger_outline_scores_lower_and_measures_longer():
    grid = tiny_grid()
    readers = [[nodule_on_two_slices(4, 4, 8, 8)] for _ in range(3)] + [[nodule_on_two_slices(2, 2, 11, 11)]]
    [group] = group_nodules(parse_lidc_xml(lidc_xml(readers)).nodules, grid)
    agreement = {a.reader: a for a in reader_agreement(group, grid)}
    assert [agreement[r].dice for r in range(3)] == [1.0, 1.0, 1.0]
    assert agreement[3].dice == pytest.approx(2 * 25 / (25 + 100))
    assert agreement[3].long_axis_difference_mm > 5.0


def test_marks_on_neighbouring_slices_are_one_nodule_when_their_centres_are_close():
    grid = tiny_grid()
    readers = [[roi_xml(1, square(3, 3, 9, 9))], [roi_xml(2, square(4, 4, 10, 10))]]
    [group] = group_nodules(parse_lidc_xml(lidc_xml(readers)).nodules, grid)
    assert group.readers == 2


def test_only_nodules_that_three_readers_outlined_are_kept():
    grid = tiny_grid()
    common, rare = nodule_on_two_slices(1, 1, 4, 4), nodule_on_two_slices(10, 10, 13, 13)
    readers = [[common, rare], [common, rare], [common], [roi_xml(1, [(12, 12)])]]  # the last: a < 3 mm point
    reading = parse_lidc_xml(lidc_xml(readers))
    assert len(reading.nodules) == 5 and [p.kind for p in reading.points] == ["small nodule"]
    groups = group_nodules(reading.nodules, grid)
    assert sorted(g.readers for g in groups) == [2, 3]
    [kept] = consensus_nodules(groups, grid, min_readers=3)
    assert kept.readers == 3


def test_lidc_idri_0001_has_one_nodule_that_three_or_more_readers_outlined(shared_data):
    case = shared_data("lidc_idri/LIDC-IDRI-0001")
    grid = read_ct_grid(case / "ct")
    reading = parse_lidc_xml(case / "069.xml")
    [nodule] = consensus_nodules(group_nodules(reading.nodules, grid), grid)
    assert nodule.readers == 4
    assert 20.0 <= long_axis_mm(consensus(list(nodule.voxels.values())), grid) <= 35.0
