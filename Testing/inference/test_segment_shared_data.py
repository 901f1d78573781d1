"""Acceptance on real CT: `segment ../shared/data/chest_ct_dicom` with the shipped model."""

from __future__ import annotations

import json

import numpy as np
import pytest
import SimpleITK as sitk
from MedSegAILib.cli.main import main
from MedSegAILib.errors import InputError
from MedSegAILib.io import Volume, read_volume
from MedSegAILib.models.registry import resolve_model


@pytest.fixture
def shipped_model():
    try:
        return resolve_model(None)
    except InputError:
        pytest.skip("needs the shipped chest_ct model in MedSegAILib/models/builtin/chest_ct")


@pytest.mark.slow
@pytest.mark.shared_data
def test_real_chest_ct_gives_contract_files_with_the_left_lung_on_the_left(
    shared_data, shipped_model, tmp_path
):
    series = shared_data("chest_ct_dicom")
    out = tmp_path / "out"
    assert main(["segment", str(series), "-o", str(out), "--quiet", "--device", "cpu"]) == 0

    source = read_volume(series)
    labels = Volume.from_sitk(sitk.ReadImage(str(out / "segmentation.nii.gz")))
    assert labels.same_grid(source)
    values = {
        entry["name"]: entry["value"] for entry in json.loads((out / "labels.json").read_text())["labels"]
    }
    assert {"left lung", "right lung", "lung nodule"} <= set(values)
    assert json.loads((out / "run.json").read_text())["model"]["name"] == shipped_model.name

    def centre_x(value: int) -> float:
        k, j, i = np.nonzero(labels.array == value)
        assert k.size > 0, f"label {value} is empty"
        return float(
            labels.ijk_to_lps(np.stack([i, j, k], axis=-1)[:: max(1, k.size // 20000)].astype(float))[
                :, 0
            ].mean()
        )

    left, right = centre_x(values["left lung"]), centre_x(values["right lung"])
    assert left > right + 50.0  # LPS: the patient's left is at larger x, lungs ~10 cm apart
    voxel_ml = float(np.prod(labels.spacing)) / 1000.0
    for name in ("left lung", "right lung"):
        assert 500.0 < np.count_nonzero(labels.array == values[name]) * voxel_ml < 4500.0, name
    # The trachea is airway, central and above the lungs' hila, not part of a lung.
    airway = np.count_nonzero(labels.array == values["airway"]) * voxel_ml
    assert 20.0 < airway < 250.0
    assert abs(centre_x(values["airway"])) < 40.0
