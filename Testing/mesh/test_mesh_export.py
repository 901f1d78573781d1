"""export_label_meshes (issue 6): file per label, names, colours, empty labels, many labels."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from MedSegAILib.mesh import MeshOptions, export_label_meshes, mesh_file_name
from vtkmodules.vtkIOPLY import vtkPLYReader

from .helpers import ball, grid, read_stl


def two_balls():
    volume = grid((30, 30, 50), spacing=(0.8, 0.8, 1.2))
    labels = np.zeros(volume.array.shape, np.uint8)
    labels[ball(volume, (10, 12, 18), 7)] = 1
    labels[ball(volume, (28, 12, 18), 5)] = 2
    return volume, labels


def test_one_named_stl_per_label_and_a_report_for_each(tmp_path):
    volume, labels = two_balls()
    names = {1: ("left lung", (200, 100, 50)), 2: ("right lung", (50, 100, 200))}
    reports = export_label_meshes(labels, volume, names, tmp_path, MeshOptions())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["left_lung.stl", "right_lung.stl"]
    assert [(r.label, r.name, r.file) for r in reports] == [
        (1, "left lung", "left_lung.stl"),
        (2, "right lung", "right_lung.stl"),
    ]
    for report in reports:
        corners, _ = read_stl(tmp_path / report.file)
        assert len(corners) == report.triangles
        assert report.closed and report.manifold and report.components == 1
    assert reports[0].volume_mm3 == pytest.approx(4 / 3 * np.pi * 7**3, rel=0.05)
    assert (tmp_path / "left_lung.stl").read_bytes()[:80].startswith(b"MedSegAI surface: left lung")


def test_an_empty_label_gives_no_file_and_a_warning(tmp_path, caplog):
    volume, labels = two_balls()
    names = {1: ("left lung", (1, 2, 3)), 3: ("lung nodule", (9, 9, 9))}
    with caplog.at_level(logging.WARNING, logger="MedSegAILib.mesh"):
        reports = export_label_meshes(labels, volume, names, tmp_path, MeshOptions())
    assert [r.label for r in reports] == [1, 2, 3]
    nodule = reports[2]
    assert nodule.file is None and nodule.triangles == 0 and "no voxels" in nodule.warning
    assert not (tmp_path / "lung_nodule.stl").exists()
    assert (tmp_path / "label_2.stl").exists()
    assert any("lung nodule" in message and "no voxels" in message for message in caplog.messages)


def test_an_all_background_map_writes_nothing(tmp_path):
    volume = grid((5, 5, 5))
    assert export_label_meshes(volume.array, volume, {}, tmp_path, MeshOptions()) == []
    assert list(tmp_path.iterdir()) == []


def test_a_hundred_labels_give_a_hundred_closed_meshes(tmp_path):
    volume = grid((12, 40, 40), spacing=(1.0, 1.0, 1.0))
    labels = np.zeros(volume.array.shape, np.uint16)
    for value in range(1, 101):
        row, column = divmod(value - 1, 10)
        labels[3:9, 4 * row + 1 : 4 * row + 4, 4 * column + 1 : 4 * column + 4] = value
    labels[3:9, 1:4, 4:5] = 1  # label 1 touches label 2
    progress = []
    reports = export_label_meshes(
        labels, volume, {}, tmp_path, MeshOptions(), progress=lambda f, m: progress.append(f)
    )
    assert len(reports) == 100 and len(list(tmp_path.glob("label_*.stl"))) == 100
    assert all(r.closed and r.manifold and r.components == 1 for r in reports)
    assert progress[-1] == 1.0 and progress == sorted(progress)


def test_file_names_replace_spaces_and_separators_and_stay_unique(tmp_path):
    assert mesh_file_name("left lung", "stl") == "left_lung.stl"
    assert mesh_file_name("a/b\\c", "obj") == "a_b_c.obj"
    volume, labels = two_balls()
    reports = export_label_meshes(
        labels, volume, {1: ("lung", None), 2: ("lung", None)}, tmp_path, MeshOptions()
    )
    assert [r.file for r in reports] == ["lung_1.stl", "lung_2.stl"]


def test_obj_keeps_the_segment_colour_and_normals(tmp_path):
    volume, labels = two_balls()
    reports = export_label_meshes(
        labels, volume, {1: ("left lung", (255, 0, 51))}, tmp_path, MeshOptions(format="obj")
    )
    text = (tmp_path / "left_lung.obj").read_text().splitlines()
    vertices = [line.split() for line in text if line.startswith("v ")]
    assert {tuple(v[4:]) for v in vertices} == {("1.0000", "0.0000", "0.2000")}
    assert sum(line.startswith("vn ") for line in text) == len(vertices)
    assert sum(line.startswith("f ") for line in text) == reports[0].triangles


def test_ply_keeps_the_segment_colour(tmp_path):
    volume, labels = two_balls()
    reports = export_label_meshes(
        labels, volume, {2: ("right lung", (10, 20, 30))}, tmp_path, MeshOptions(format="ply")
    )
    reader = vtkPLYReader()
    reader.SetFileName(str(tmp_path / "right_lung.ply"))
    reader.Update()
    surface = reader.GetOutput()
    assert surface.GetNumberOfPolys() == reports[1].triangles
    colors = surface.GetPointData().GetScalars()
    assert colors is not None and colors.GetTuple3(0) == (10.0, 20.0, 30.0)


def test_labels_off_the_reference_grid_are_refused(tmp_path):
    volume, labels = two_balls()
    with pytest.raises(ValueError, match="does not match"):
        export_label_meshes(labels[:-1], volume, {}, tmp_path, MeshOptions())
    with pytest.raises(ValueError, match="integers"):
        export_label_meshes(labels.astype(float), volume, {}, tmp_path, MeshOptions())
