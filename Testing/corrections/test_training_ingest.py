"""`python -m MedSegAILib.training.train --corrections DIR` trains on the exported corrections."""

from __future__ import annotations

import json

import numpy as np
import SimpleITK as sitk
from MedSegAILib.io import Volume, read_volume
from MedSegAILib.models.card import LabelInfo
from MedSegAILib.training import train as train_module
from MedSegAILib.training.corrections import add_correction, export_training_folder


def test_one_training_step_uses_the_corrected_cases(shared_data, tmp_path):
    ct = read_volume(shared_data("cip_lung_ct/ct-64.nrrd"))
    region = Volume.from_sitk(sitk.ReadImage(str(shared_data("cip_lung_ct/lm-64.nrrd")))).array & 255
    corrected = np.where(np.isin(region, range(1, 15)), 1, 0).astype(np.uint8)
    case = add_correction(tmp_path / "store", ct, ct.with_array(corrected), [LabelInfo(1, "lung")])
    export_training_folder(tmp_path / "store", tmp_path / "training")

    code = train_module.main(
        [
            "--out",
            str(tmp_path / "model"),
            "--corrections",
            str(tmp_path / "training"),
            "--max-steps",
            "1",
            "--batch",
            "1",
            "--patch",
            "32",
            "32",
            "32",
            "--device",
            "cpu",
        ]
    )

    assert code == 0
    card = json.loads((tmp_path / "model" / "model_card.json").read_text())
    assert card["training"]["data"] == [f"correction:{case.id}"]
    assert card["training"]["steps"] == 1
    assert "--corrections" in card["training"]["command"]
    assert card["training"]["init"].endswith(
        "chest_ct/model.safetensors"
    )  # fine-tuned from the shipped model
    log = [json.loads(line) for line in (tmp_path / "model" / "train_log.jsonl").read_text().splitlines()]
    assert len(log) == 1 and np.isfinite(log[0]["loss"])
