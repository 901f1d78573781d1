"""`medsegai export-stl` per CONTRACT: formats, options, meshes.json, errors and exit codes."""

from __future__ import annotations

import json

import numpy as np
import pytest
import SimpleITK as sitk
from MedSegAILib.cli.main import main

from .helpers import ball, grid, read_stl


@pytest.fixture
def label_map(tmp_path):
    volume = grid((30, 30, 40), spacing=(0.9, 0.9, 1.5), origin=(-10.0, 5.0, 20.0))
    labels = np.zeros(volume.array.shape, np.uint8)
    labels[ball(volume, (4, 18, 42), 6)] = 1
    labels[ball(volume, (20, 18, 42), 4)] = 2
    path = tmp_path / "segmentation.nii.gz"
    sitk.WriteImage(volume.with_array(labels).to_sitk(), str(path))
    (tmp_path / "labels.json").write_text(
        json.dumps(
            {
                "labels": [
                    {"value": 1, "name": "left lung", "color": [128, 174, 128], "terminology": {}},
                    {"value": 2, "name": "right lung", "color": [241, 214, 145], "terminology": {}},
                    {"value": 3, "name": "lung nodule", "color": [255, 0, 0], "terminology": {}},
                ]
            }
        )
    )
    return path


def test_default_export_writes_binary_stl_in_lps_and_meshes_json(tmp_path, label_map, capsys):
    out = tmp_path / "meshes"
    assert (
        main(["export-stl", str(label_map), "-o", str(out), "--labels", str(tmp_path / "labels.json")]) == 0
    )
    assert sorted(p.name for p in out.iterdir()) == ["left_lung.stl", "meshes.json", "right_lung.stl"]
    report = json.loads((out / "meshes.json").read_text())
    assert report["coordinate_system"] == "LPS" and report["units"] == "mm"
    by_name = {m["name"]: m for m in report["meshes"]}
    assert by_name["lung nodule"]["file"] is None and "no voxels" in by_name["lung nodule"]["warning"]
    assert by_name["left lung"]["closed"] and by_name["left lung"]["manifold"]
    corners, _ = read_stl(out / "left_lung.stl")
    assert corners.reshape(-1, 3).mean(axis=0) == pytest.approx([4, 18, 42], abs=0.2)
    assert "lung nodule" in capsys.readouterr().err


def test_ras_obj_ply_and_processing_options(tmp_path, label_map):
    lps = tmp_path / "lps"
    ras = tmp_path / "ras"
    assert main(["export-stl", str(label_map), "-o", str(lps), "--quiet"]) == 0
    assert (
        main(["export-stl", str(label_map), "-o", str(ras), "--coords", "ras", "--smooth", "0", "--quiet"])
        == 0
    )
    lps_centre = read_stl(lps / "label_1.stl")[0].reshape(-1, 3).mean(axis=0)
    ras_centre = read_stl(ras / "label_1.stl")[0].reshape(-1, 3).mean(axis=0)
    assert ras_centre == pytest.approx(lps_centre * [-1, -1, 1], abs=0.05)
    for fmt in ("obj", "ply"):
        out = tmp_path / fmt
        assert (
            main(
                [
                    "export-stl",
                    str(label_map),
                    "-o",
                    str(out),
                    "--format",
                    fmt,
                    "--decimate",
                    "0.5",
                    "--keep-largest",
                    "--fill-holes",
                    "10",
                    "--quiet",
                ]
            )
            == 0
        )
        assert sorted(p.suffix for p in out.iterdir()) == [".json", f".{fmt}", f".{fmt}"]
    full = json.loads((lps / "meshes.json").read_text())["meshes"][0]["triangles"]
    decimated = json.loads((tmp_path / "ply" / "meshes.json").read_text())["meshes"][0]
    assert decimated["triangles"] == pytest.approx(full / 2, rel=0.05) and decimated["manifold"]


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["missing.nii.gz"], "no such file"),
        (["not_an_image.nii.gz"], "cannot be read"),
        (["segmentation.nii.gz", "--decimate", "1"], "decimate"),
        (["segmentation.nii.gz", "--labels", "{tmp}/bad_labels.json"], "not a valid labels.json"),
        (["float.nii.gz"], "non-integer"),
    ],
)
def test_bad_input_exits_2_with_one_line_and_leaves_nothing(tmp_path, label_map, capsys, arguments, message):
    (tmp_path / "not_an_image.nii.gz").write_bytes(b"garbage")
    (tmp_path / "bad_labels.json").write_text('{"labels": [{"name": "no value"}]}')
    image = sitk.ReadImage(str(label_map), sitk.sitkFloat32) * 0.5
    sitk.WriteImage(image, str(tmp_path / "float.nii.gz"))
    out = tmp_path / "out"
    arguments = [str(tmp_path / arguments[0]), *(a.format(tmp=tmp_path) for a in arguments[1:])]
    assert main(["export-stl", *arguments, "-o", str(out)]) == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith("medsegai: error:") and message in error
    assert not out.exists()
