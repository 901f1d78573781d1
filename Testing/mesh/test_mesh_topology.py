"""Topology (issue 6): every exported surface is closed and manifold; the checks themselves work."""

from __future__ import annotations

import numpy as np
import pytest
from MedSegAILib.mesh import MeshOptions, export_label_meshes, mask_surface, measure_surface
from MedSegAILib.mesh.export import _bounding_boxes
from MedSegAILib.mesh.measure import _sort_with_order
from MedSegAILib.mesh.vtk_arrays import polydata_arrays
from scipy import ndimage

from .helpers import ball, grid

TETRAHEDRON = (
    np.array([[0.0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]]),
    np.array([[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]]),
)


def test_measures_of_a_tetrahedron():
    measures = measure_surface(*TETRAHEDRON)
    assert measures.closed and measures.manifold
    assert measures.components == 1 and measures.triangles == 4
    assert measures.volume_mm3 == pytest.approx(1 / 6)
    assert measures.area_mm2 == pytest.approx(1.5 + np.sqrt(3) / 2)


def test_a_missing_triangle_is_open_and_a_flipped_one_inconsistent():
    points, triangles = TETRAHEDRON
    assert not measure_surface(points, triangles[:3]).closed
    flipped = triangles.copy()
    flipped[0] = flipped[0, ::-1]
    assert not measure_surface(points, flipped).closed


def test_two_tetrahedra_sharing_one_vertex_are_closed_but_not_manifold():
    points, triangles = TETRAHEDRON
    mirrored = np.vstack([points, -points[1:]])
    second = triangles.copy()
    second[second > 0] += 3
    measures = measure_surface(mirrored, np.vstack([triangles, second]))
    assert measures.closed and not measures.manifold
    assert measures.components == 1


def _reports(labels, volume, tmp_path, **options):
    return {r.label: r for r in export_label_meshes(labels, volume, {}, tmp_path, MeshOptions(**options))}


def test_touching_labels_each_get_their_own_closed_surface(tmp_path):
    volume = grid((30, 30, 40))
    labels = np.zeros(volume.array.shape, np.uint8)
    labels[ball(volume, (12, 15, 15), 8)] = 1
    labels[ball(volume, (26, 15, 15), 8) & (labels == 0)] = 2  # shares a flat face with label 1
    labels[5:25, 5:25, 19:21] = 3  # a slab cutting through both
    reports = _reports(labels, volume, tmp_path)
    assert set(reports) == {1, 2, 3}
    for report in reports.values():
        assert report.closed and report.manifold and report.volume_mm3 > 0


def test_a_label_with_several_pieces_and_a_cavity_counts_every_surface(tmp_path):
    volume = grid((30, 30, 60))
    labels = np.zeros(volume.array.shape, np.uint8)
    for centre in ((10, 15, 15), (30, 15, 15), (50, 15, 15)):
        labels[ball(volume, centre, 6)] = 1
    labels[ball(volume, (50, 15, 15), 3)] = 0  # hollow third piece
    report = _reports(labels, volume, tmp_path)[1]
    assert report.closed and report.manifold
    assert report.components == 4  # three outer surfaces and one cavity surface
    solid = 2 * 4 / 3 * np.pi * 6**3 + 4 / 3 * np.pi * (6**3 - 3**3)
    assert report.volume_mm3 == pytest.approx(solid, rel=0.05)  # the cavity's inward normals subtract


@pytest.mark.parametrize("decimate", [0.0, 0.5, 0.9])
def test_noisy_label_maps_stay_closed_and_manifold_even_decimated(decimate):
    rng = np.random.default_rng(7)
    mask = ndimage.binary_opening(rng.random((30, 30, 30)) < 0.5)
    padded = np.pad(mask, 1).astype(np.uint8)
    points, triangles = polydata_arrays(
        mask_surface(padded, np.diag([0.7, 0.8, 2.0, 1.0]), MeshOptions(decimate=decimate))
    )
    measures = measure_surface(points, triangles)
    assert measures.closed and measures.manifold


def test_a_label_touching_the_volume_border_is_closed(tmp_path):
    volume = grid((10, 10, 10))
    labels = np.ones(volume.array.shape, np.uint8)
    report = _reports(labels, volume, tmp_path, smoothing_iterations=0)[1]
    assert report.closed and report.manifold
    # The surface runs half a voxel outside the border centres (a 10 mm cube, edges chamfered).
    assert report.volume_mm3 == pytest.approx(1000.0 - 12 * 10 * 0.125, rel=0.005)


def test_keep_largest_drops_the_small_pieces(tmp_path):
    volume = grid((30, 30, 50))
    labels = np.zeros(volume.array.shape, np.uint8)
    labels[ball(volume, (12, 15, 15), 8)] = 1
    labels[ball(volume, (38, 15, 15), 4)] = 1
    assert _reports(labels, volume, tmp_path)[1].components == 2
    report = _reports(labels, volume, tmp_path, keep_largest=True)[1]
    assert report.components == 1
    assert report.volume_mm3 == pytest.approx(4 / 3 * np.pi * 8**3, rel=0.03)


def test_fill_holes_closes_small_cavities_only(tmp_path):
    volume = grid((40, 40, 40))
    labels = np.zeros(volume.array.shape, np.uint8)
    labels[ball(volume, (20, 20, 20), 15)] = 1
    labels[ball(volume, (13, 20, 20), 2)] = 0  # ~34 mm^3 cavity
    labels[ball(volume, (26, 20, 20), 5)] = 0  # ~520 mm^3 cavity
    assert _reports(labels, volume, tmp_path)[1].components == 3
    assert _reports(labels, volume, tmp_path, fill_holes_mm3=100.0)[1].components == 2


def test_a_doubled_triangle_is_open_and_its_components_are_counted():
    points, triangles = TETRAHEDRON
    far = np.vstack([points, points + 10.0])
    doubled = np.vstack([triangles, triangles[:1], triangles[1:] + 4])  # repeated edges: not closed
    measures = measure_surface(far, doubled)
    assert not measures.closed and not measures.manifold
    assert measures.components == 2


def test_both_edge_sorts_agree():
    rng = np.random.default_rng(3)
    keys = rng.integers(0, 1000, 5000)
    positions = np.arange(len(keys))
    packed = _sort_with_order(keys.copy(), 1000, positions)
    argsorted = _sort_with_order(keys.copy(), 2**62, positions)  # too wide to pack: argsort
    for sorted_keys, order in (packed, argsorted):
        assert np.array_equal(sorted_keys, np.sort(keys)) and np.array_equal(keys[order], sorted_keys)


@pytest.mark.parametrize("values", [3, 20])
def test_bounding_boxes_match_find_objects(values):
    rng = np.random.default_rng(values)
    labels = np.zeros((40, 30, 50), np.int16)
    for value in range(1, values + 1):
        k, j, i = rng.integers(0, 35, 3)
        labels[k : k + rng.integers(1, 6), j : j + rng.integers(1, 6), i : i + rng.integers(1, 9)] = value
    labels[labels == 2] = 0  # a value with no voxels
    labels[0, 0, 0] = -1  # negative values are not labels
    expected = {
        v + 1: box for v, box in enumerate(ndimage.find_objects(np.maximum(labels, 0))) if box is not None
    }
    boxes = _bounding_boxes(labels)
    assert {v: tuple((s.start, s.stop) for s in b) for v, b in boxes.items()} == {
        v: tuple((s.start, s.stop) for s in b) for v, b in expected.items()
    }
