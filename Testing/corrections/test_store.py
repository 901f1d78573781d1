"""The corrections store: exact round trip, change statistics, refusals, atomic cases."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import SimpleITK as sitk
from MedSegAILib.errors import InputError
from MedSegAILib.io import Volume
from MedSegAILib.models.card import LabelInfo, read_labels_json
from MedSegAILib.training import corrections
from MedSegAILib.training.corrections import (
    add_correction,
    default_store,
    label_changes,
    list_corrections,
    network_class,
)


@pytest.fixture
def prediction(oblique_ct) -> np.ndarray:
    labels = np.zeros(oblique_ct.array.shape, np.uint8)
    labels[1:5, 2:8, 2:6] = 1  # left lung: 4 * 6 * 4 = 96 voxels
    labels[1:5, 2:8, 8:12] = 2  # right lung: 96 voxels
    return labels


@pytest.fixture
def correction(prediction) -> np.ndarray:
    """The prediction with one slab of left lung removed and a 2x2x2 nodule added in the right lung."""
    labels = prediction.copy()
    labels[4, 2:8, 2:6] = 0  # remove 24 voxels of left lung
    labels[2:4, 4:6, 9:11] = 3  # 8 voxels of right lung become nodule
    return labels


def read_stored(path) -> Volume:
    return Volume.from_sitk(sitk.ReadImage(str(path)))


def test_a_case_keeps_the_ct_and_the_corrected_labels_with_exact_geometry(
    tmp_path, oblique_ct, correction, model_labels
):
    case = add_correction(
        tmp_path / "store",
        oblique_ct,
        oblique_ct.with_array(correction),
        model_labels,
        source={"path": "/data/ct.nrrd"},
        author="tester",
    )

    assert sorted(p.name for p in case.folder.iterdir()) == [
        "case.json",
        "image.nii.gz",
        "labels.json",
        "labels.nii.gz",
    ]
    image, labels = read_stored(case.folder / "image.nii.gz"), read_stored(case.folder / "labels.nii.gz")
    assert image.same_grid(oblique_ct, tolerance=1e-5) and labels.same_grid(oblique_ct, tolerance=1e-5)
    assert image.array.dtype == np.int16  # whole HU values are stored as int16, unchanged
    np.testing.assert_array_equal(image.array, oblique_ct.array)
    np.testing.assert_array_equal(labels.array, correction)
    assert read_labels_json(case.folder / "labels.json") == model_labels
    record = json.loads((case.folder / "case.json").read_text())
    assert record == case.record
    assert (
        record["id"] == case.id
        and record["author"] == "tester"
        and record["source"] == {"path": "/data/ct.nrrd"}
    )
    assert record["grid"]["size_ijk"] == [14, 12, 10] and record["grid"]["spacing"] == [0.7, 0.9, 2.5]
    assert record["labels"] == ["left lung", "right lung", "lung nodule"]
    assert record["model"] is None and record["changes"] is None  # no original prediction given
    assert [c.id for c in list_corrections(tmp_path / "store")] == [case.id]


def test_change_statistics_count_the_added_and_removed_voxels_per_segment(
    tmp_path, oblique_ct, prediction, correction, model_labels
):
    model = {"name": "chest_ct", "version": "1.2.0", "weights_sha256": "ab" * 32}
    case = add_correction(
        tmp_path,
        oblique_ct,
        oblique_ct.with_array(correction),
        model_labels,
        original=oblique_ct.with_array(prediction),
        original_labels=model_labels[:2],
        model=model,
    )

    voxel = 0.7 * 0.9 * 2.5
    changes = case.record["changes"]
    assert case.record["model"] == model
    assert changes["left lung"] == pytest.approx(
        {
            "original_mm3": 96 * voxel,
            "corrected_mm3": 72 * voxel,
            "added_mm3": 0.0,
            "removed_mm3": 24 * voxel,
            "dice": 2 * 72 / (96 + 72),
        },
        abs=1e-3,
    )
    assert changes["right lung"] == pytest.approx(
        {
            "original_mm3": 96 * voxel,
            "corrected_mm3": 88 * voxel,
            "added_mm3": 0.0,
            "removed_mm3": 8 * voxel,
            "dice": 2 * 88 / (96 + 88),
        },
        abs=1e-3,
    )
    assert changes["lung nodule"] == pytest.approx(
        {
            "original_mm3": 0.0,
            "corrected_mm3": 8 * voxel,
            "added_mm3": 8 * voxel,
            "removed_mm3": 0.0,
            "dice": 0.0,
        },
        abs=1e-3,
    )


def test_segments_are_matched_by_name_not_by_label_value(model_labels):
    original = np.array([0, 1, 1, 2, 2])
    renumbered = np.array([0, 2, 2, 1, 0])  # the editor numbered right lung 1 and left lung 2
    changes = label_changes(
        original, model_labels[:2], renumbered, [LabelInfo(1, "Right Lung"), LabelInfo(2, "left lung")], 1.0
    )

    assert changes["left lung"]["dice"] == 1.0
    assert changes["Right Lung"] == {
        "original_mm3": 2.0,
        "corrected_mm3": 1.0,
        "added_mm3": 0.0,
        "removed_mm3": 1.0,
        "dice": pytest.approx(2 / 3, abs=1e-6),
    }
    assert (
        label_changes(original, [LabelInfo(5, "airway")], original, [LabelInfo(5, "airway")], 1.0)["airway"][
            "dice"
        ]
        is None
    )


@pytest.mark.parametrize(
    "change",
    [
        {"origin": (-120.5, 30.25, -197.5)},  # shifted by one slice
        {"spacing": (0.7, 0.9, 2.0)},
        {"direction": np.eye(3)},
    ],
)
def test_a_label_map_off_the_ct_grid_is_refused(tmp_path, oblique_ct, correction, model_labels, change):
    off_grid = replace(oblique_ct.with_array(correction), metadata={"source": "edited.nii.gz"}, **change)

    with pytest.raises(InputError, match=r"edited.nii.gz: the corrected label map is not on the CT grid"):
        add_correction(tmp_path / "store", oblique_ct, off_grid, model_labels)
    assert not (tmp_path / "store").exists()


def test_a_label_map_of_another_size_or_an_off_grid_original_is_refused(
    tmp_path, oblique_ct, correction, model_labels
):
    cropped = Volume(correction[:, :, :10], oblique_ct.spacing, oblique_ct.origin, oblique_ct.direction)
    with pytest.raises(InputError, match=r"size \(10, 12, 10\) vs \(14, 12, 10\)"):
        add_correction(tmp_path, oblique_ct, cropped, model_labels)
    shifted = replace(oblique_ct.with_array(correction), origin=(0.0, 0.0, 0.0))
    with pytest.raises(InputError, match="original segmentation is not on the CT grid"):
        add_correction(
            tmp_path,
            oblique_ct,
            oblique_ct.with_array(correction),
            model_labels,
            original=shifted,
            original_labels=model_labels,
        )


def test_label_values_without_a_name_are_refused(tmp_path, oblique_ct, correction, model_labels):
    correction[0, 0, 0] = 7
    with pytest.raises(InputError, match=r"label values \[7\] have no name"):
        add_correction(tmp_path, oblique_ct, oblique_ct.with_array(correction), model_labels)


def test_a_failed_write_leaves_no_case_behind(tmp_path, oblique_ct, correction, model_labels, monkeypatch):
    def broken_label_writer(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(corrections, "write_label_map", broken_label_writer)
    with pytest.raises(OSError, match="disk full"):
        add_correction(tmp_path, oblique_ct, oblique_ct.with_array(correction), model_labels)
    assert list(tmp_path.iterdir()) == []  # no case folder, no staging folder
    assert list_corrections(tmp_path) == []


def test_non_integer_ct_values_are_stored_as_float(tmp_path, oblique_ct, correction, model_labels):
    ct = oblique_ct.with_array(oblique_ct.array + 0.25)
    case = add_correction(tmp_path, ct, ct.with_array(correction), model_labels)
    stored = read_stored(case.folder / "image.nii.gz").array
    assert stored.dtype == np.float32
    np.testing.assert_array_equal(stored, ct.array)


def test_the_store_defaults_to_the_environment_then_the_home_folder(monkeypatch, tmp_path):
    monkeypatch.setenv("MEDSEGAI_CORRECTIONS", str(tmp_path / "shared store"))
    assert default_store() == tmp_path / "shared store"
    monkeypatch.delenv("MEDSEGAI_CORRECTIONS")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_store() == tmp_path / ".medsegai" / "corrections"


def test_segment_names_map_to_the_networks_raw_classes():
    assert [network_class(n) for n in ("left lung", "Right Lung", "lung", "right_lung")] == [1, 1, 1, 1]
    assert [network_class(n) for n in ("lung nodule", "nodule", "nodule 12")] == [2, 2, 2]
    assert [network_class(n) for n in ("airway", "trachea")] == [3, 3]
    assert network_class("heart") is None and network_class("Segment_1") is None
