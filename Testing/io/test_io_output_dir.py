"""OutputDir and atomic writes: all outputs land together or none do; old files are only
ever replaced by complete new ones."""

from __future__ import annotations

import json

import numpy as np
import pytest
from MedSegAILib.errors import InputError
from MedSegAILib.io import OutputDir, atomic_path, write_json


class Boom(Exception):
    pass


def _everything_under(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def test_success_moves_every_file_into_place(tmp_path):
    outdir = tmp_path / "out"
    with OutputDir(outdir) as out:
        out.path("segmentation.nii.gz").write_bytes(b"labels")
        write_json(out.path("labels.json"), {"labels": []})
        out.path("meshes/left_lung.stl").write_bytes(b"solid")
        assert not (outdir / "segmentation.nii.gz").exists()  # staged until the job succeeds
    assert _everything_under(outdir) == [
        "labels.json",
        "meshes",
        "meshes/left_lung.stl",
        "segmentation.nii.gz",
    ]


def test_failure_in_a_new_folder_leaves_nothing(tmp_path):
    outdir = tmp_path / "new" / "out"
    with pytest.raises(Boom):
        with OutputDir(outdir) as out:
            out.path("segmentation.nii.gz").write_bytes(b"half")
            raise Boom()
    assert not outdir.exists()


def test_failure_in_an_existing_folder_keeps_old_files_untouched(tmp_path):
    outdir = tmp_path / "out"
    outdir.mkdir()
    (outdir / "segmentation.nii.gz").write_bytes(b"old result")
    (outdir / "notes.txt").write_text("the user's own file")
    with pytest.raises(Boom):
        with OutputDir(outdir) as out:
            out.path("segmentation.nii.gz").write_bytes(b"new but unfinished")
            out.path("run.json").write_text("{}")
            raise Boom()
    assert _everything_under(outdir) == ["notes.txt", "segmentation.nii.gz"]
    assert (outdir / "segmentation.nii.gz").read_bytes() == b"old result"


def test_success_replaces_old_files_with_complete_new_ones(tmp_path):
    outdir = tmp_path / "out"
    outdir.mkdir()
    (outdir / "segmentation.nii.gz").write_bytes(b"old result")
    with OutputDir(outdir) as out:
        out.path("segmentation.nii.gz").write_bytes(b"new result")
    assert (outdir / "segmentation.nii.gz").read_bytes() == b"new result"
    assert _everything_under(outdir) == ["segmentation.nii.gz"]


def test_keyboard_interrupt_also_cleans_up(tmp_path):
    outdir = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        with OutputDir(outdir) as out:
            out.path("segmentation.nii.gz").write_bytes(b"half")
            raise KeyboardInterrupt
    assert not outdir.exists()


def test_output_path_that_is_a_file_is_refused(tmp_path):
    blocker = tmp_path / "out"
    blocker.write_text("a file")
    with pytest.raises(InputError, match=r"out: exists and is not a folder"):
        with OutputDir(blocker):
            pass
    assert blocker.read_text() == "a file"


def test_atomic_path_keeps_the_old_file_when_writing_fails(tmp_path):
    target = tmp_path / "run.json"
    write_json(target, {"version": 1})
    with pytest.raises(Boom):
        with atomic_path(target) as temporary:
            assert temporary.name.endswith(".json") and temporary.parent == tmp_path
            temporary.write_text('{"version": 2, "trunc')
            raise Boom()
    assert json.loads(target.read_text()) == {"version": 1}
    assert _everything_under(tmp_path) == ["run.json"]


def test_write_json_handles_numpy_values_and_paths(tmp_path):
    target = write_json(tmp_path / "x.json", {"a": np.float32(1.5), "b": np.arange(3), "c": tmp_path})
    assert json.loads(target.read_text()) == {"a": 1.5, "b": [0, 1, 2], "c": str(tmp_path)}
