"""`medsegai corrections add|list|export` through the real command line, on real CT.

One call runs `medsegai` in a fresh process (the installed entry point); the others call
its ``main`` in this process (same parser, dispatch and exit codes; no 20 s start-up each).

The "prediction" is the CIP lung label map of ct-64 as a `medsegai segment` output folder
(segmentation.nii.gz + labels.json + run.json); the "correction" removes one slab of left
lung and paints a nodule and the trachea (as airway).
"""

from __future__ import annotations

import json

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from MedSegAILib.cli.main import main
from MedSegAILib.io import Volume, read_volume, write_json, write_label_map
from MedSegAILib.models.card import LabelInfo
from MedSegAILib.training.canonical import canonical_image, image_array
from MedSegAILib.training.corrections import load_correction_cases

CT_SERIES = "cip_lung_ct/ct-64Dicom"
CIP_LABELS = "cip_lung_ct/lm-64.nrrd"
MODEL = {"name": "chest_ct", "version": "1.0.0", "weights_sha256": "0f" * 32}


@pytest.fixture
def edit(shared_data, tmp_path, model_labels):
    """A segment output folder from the CIP labels, and a corrected label map with its labels.json."""
    reference = Volume.from_sitk(sitk.ReadImage(str(shared_data(CIP_LABELS))))
    region = reference.array & 255
    prediction = np.zeros(region.shape, np.uint8)
    prediction[np.isin(region, (3, 7, 8, 9, 10, 11))] = 1  # left lung
    prediction[np.isin(region, (2, 4, 5, 6, 12, 13, 14))] = 2  # right lung
    predicted = tmp_path / "segment"
    write_label_map(prediction, reference, predicted / "segmentation.nii.gz")
    write_json(predicted / "labels.json", {"labels": [info.to_json() for info in model_labels]})
    write_json(
        predicted / "run.json",
        {"command": "segment", "model": {**MODEL, "folder": "/models/chest_ct"}, "device": "cpu"},
    )

    corrected = prediction.copy()
    left_slices = np.unique(np.nonzero(prediction == 1)[0])
    removed_slice = left_slices[len(left_slices) // 2]
    removed = int(np.count_nonzero(prediction[removed_slice] == 1))
    corrected[removed_slice][corrected[removed_slice] == 1] = 0
    right = np.argwhere(prediction == 2)
    k, j, i = right[len(right) // 2]
    corrected[k - 1 : k + 1, j - 1 : j + 1, i - 1 : i + 1] = 3  # an 8-voxel nodule inside the right lung
    nodule_from_right = int(np.count_nonzero(prediction[k - 1 : k + 1, j - 1 : j + 1, i - 1 : i + 1] == 2))
    corrected[reference.array == 512] = 4  # the trachea, painted as airway
    edited = tmp_path / "edited"
    write_label_map(corrected, reference, edited / "corrected.nii.gz")
    write_json(
        edited / "labels.json",
        {"labels": [info.to_json() for info in model_labels] + [LabelInfo(4, "airway").to_json()]},
    )
    return {
        "prediction": prediction,
        "corrected": corrected,
        "predicted": predicted,
        "edited": edited,
        "removed_left": removed,
        "nodule_from_right": nodule_from_right,
        "voxel": float(np.prod(reference.spacing)),
    }


def cli(capsys, *args: str) -> tuple[int, str, str]:
    """``medsegai ARGS`` in this process: (exit code, stdout, stderr)."""
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_add_list_and_export_through_the_cli(capsys, monkeypatch, shared_data, tmp_path, edit, medsegai):
    store, out = tmp_path / "store", tmp_path / "training"
    ct = shared_data(CT_SERIES)

    added = medsegai(
        "corrections",
        "add",
        "--image",
        str(ct),
        "--labels",
        str(edit["edited"] / "corrected.nii.gz"),
        "--original",
        str(edit["predicted"] / "segmentation.nii.gz"),
        "--author",
        "dr who",
        "--store",
        str(store),
    )
    assert added.returncode == 0, added.stderr
    assert added.stdout.startswith("stored case ")

    monkeypatch.setenv("MEDSEGAI_CORRECTIONS", str(store))
    code, listed, errors = cli(capsys, "corrections", "list", "--json")
    assert code == 0, errors
    cases = json.loads(listed)["cases"]
    assert len(cases) == 1
    record = cases[0]
    first = pydicom.dcmread(ct / "IMG0001.dcm", stop_before_pixels=True)
    assert record["source"]["series_uid"] == first.SeriesInstanceUID and record["source"]["format"] == "dicom"
    assert record["model"] == MODEL and record["author"] == "dr who"
    voxel = edit["voxel"]
    changes = record["changes"]
    assert changes["left lung"]["removed_mm3"] == pytest.approx(edit["removed_left"] * voxel, rel=1e-5)
    assert changes["left lung"]["added_mm3"] == 0.0
    assert changes["right lung"]["removed_mm3"] == pytest.approx(edit["nodule_from_right"] * voxel, rel=1e-5)
    assert changes["lung nodule"]["added_mm3"] == pytest.approx(8 * voxel, rel=1e-5)
    assert changes["airway"] == {
        "original_mm3": 0.0,
        "corrected_mm3": pytest.approx(510 * voxel, rel=1e-5),
        "added_mm3": pytest.approx(510 * voxel, rel=1e-5),
        "removed_mm3": 0.0,
        "dice": 0.0,
    }
    code, text, _ = cli(capsys, "corrections", "list", "--store", str(store))
    assert record["id"] in text and "chest_ct 1.0.0" in text and "lung nodule: +" in text

    code, _, errors = cli(capsys, "corrections", "export", "--out", str(out), "--quiet")
    assert code == 0, errors
    dataset = json.loads((out / "dataset.json").read_text())
    assert dataset["classes"] == ["background", "lung", "lung nodule", "airway"]
    entry = dataset["cases"][0]
    assert entry["classes_of_segments"] == {"left lung": 1, "right lung": 1, "lung nodule": 2, "airway": 3}
    classes = sitk.GetArrayFromImage(sitk.ReadImage(str(out / entry["label"])))
    expected = np.select(
        [edit["corrected"] == 1, edit["corrected"] == 2, edit["corrected"] == 3, edit["corrected"] == 4],
        [1, 1, 2, 3],
        0,
    )
    np.testing.assert_array_equal(classes, expected)
    image = Volume.from_sitk(sitk.ReadImage(str(out / entry["image"])))
    series = read_volume(ct)
    np.testing.assert_array_equal(image.array, series.array)
    assert image.same_grid(series, tolerance=1e-5)  # NIfTI keeps the series geometry to float32 precision


def test_the_exported_folder_loads_as_training_cases_with_raw_classes(capsys, shared_data, tmp_path, edit):
    store, out = tmp_path / "store", tmp_path / "training"
    assert (
        cli(
            capsys,
            "corrections",
            "add",
            "--image",
            str(shared_data("cip_lung_ct/ct-64.nrrd")),
            "--labels",
            str(edit["edited"] / "corrected.nii.gz"),
            "--store",
            str(store),
        )[0]
        == 0
    )
    assert (
        cli(capsys, "corrections", "export", "--out", str(out), "--store", str(store), "--weight", "0.5")[0]
        == 0
    )

    (case,) = load_correction_cases(out, (2.0, 2.0, 2.0))

    assert case.name.startswith("correction:") and case.weight == 0.5 and not case.cropped
    assert case.spacing == (2.0, 2.0, 2.0) and case.hu.dtype == np.int16 and case.label.dtype == np.uint8
    resampled_ct = image_array(canonical_image(shared_data("cip_lung_ct/ct-64.nrrd"), (2.0, 2.0, 2.0)))
    assert case.hu.shape == case.label.shape == resampled_ct.shape  # resampled as every training scan is
    np.testing.assert_allclose(
        case.hu, np.clip(np.round(resampled_ct), -1024, 3071), atol=1
    )  # NIfTI float32 origin
    assert set(np.unique(case.label).tolist()) == {0, 1, 2, 3}
    assert -1024 <= case.hu.min() and case.hu.max() <= 3071
    in_lung = case.hu[case.label == 1]
    assert np.median(in_lung) < -600  # the labels sit on the CT's lungs after resampling
    native_ml = np.count_nonzero(np.isin(edit["corrected"], (1, 2))) * edit["voxel"] / 1000
    assert np.count_nonzero(case.label == 1) * 8 / 1000 == pytest.approx(native_ml, rel=0.05)


def test_cli_refuses_off_grid_labels_and_missing_names(capsys, shared_data, tmp_path, edit):
    store = tmp_path / "store"
    ct = str(shared_data("cip_lung_ct/ct-64.nrrd"))
    shifted = sitk.ReadImage(str(edit["edited"] / "corrected.nii.gz"))
    shifted.SetOrigin(tuple(o + 10.0 for o in shifted.GetOrigin()))
    sitk.WriteImage(shifted, str(tmp_path / "shifted.nii.gz"))
    (tmp_path / "labels.json").write_text((edit["edited"] / "labels.json").read_text())

    code, _, errors = cli(
        capsys,
        "corrections",
        "add",
        "--image",
        ct,
        "--labels",
        str(tmp_path / "shifted.nii.gz"),
        "--store",
        str(store),
    )
    assert code == 2
    assert "shifted.nii.gz: the corrected label map is not on the CT grid" in errors
    assert len(errors.strip().splitlines()) == 1 and not store.exists()

    (tmp_path / "labels.json").unlink()
    code, _, errors = cli(
        capsys,
        "corrections",
        "add",
        "--image",
        ct,
        "--labels",
        str(tmp_path / "shifted.nii.gz"),
        "--store",
        str(store),
    )
    assert code == 2 and "no labels.json beside it; give the names of its values with --labels-json" in errors

    code, _, errors = cli(
        capsys, "corrections", "export", "--out", str(tmp_path / "out"), "--store", str(store)
    )
    assert code == 2 and "no corrections stored" in errors and not (tmp_path / "out").exists()
