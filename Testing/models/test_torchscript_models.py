"""TorchScript models with a model card beside them, and TorchScript inside MONAI bundles."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch
from bundle_factory import make_segmentation_bundle
from MedSegAILib.errors import InputError
from MedSegAILib.io.volume import Volume
from MedSegAILib.models.bundle import bundle_card_data
from MedSegAILib.models.card import load_model_card, parse_model_card
from MedSegAILib.models.install import import_model
from MedSegAILib.models.registry import load_model
from MedSegAILib.models.torchscript import load_torchscript
from MedSegAILib.models.weights import sha256_of_file
from model_folder import card_dict


class Thresholds(torch.nn.Module):
    """Class 1 where the input is above 0, class 2 where it is above 0.5 (our layout)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        background = torch.zeros_like(x)
        return torch.cat([background, (x > 0).float() * 10 - 5, (x > 0.5).float() * 20 - 10], dim=1)


def torchscript_folder(folder, network: torch.nn.Module | None = None, **network_card):
    if network is None:
        network = Thresholds()
    folder.mkdir(parents=True, exist_ok=True)
    torch.jit.save(torch.jit.script(network), str(folder / "model.ts"))
    card = card_dict(name="scripted", weights_file="model.ts", sha256=sha256_of_file(folder / "model.ts"))
    card["labels"] = copy.deepcopy(card["labels"][:2])
    card["network"] = {
        "name": "torchscript",
        "output_classes": ["background", card["labels"][0]["name"], card["labels"][1]["name"]],
        **network_card,
    }
    card["weights"]["format"] = "torchscript"
    (folder / "model_card.json").write_text(json.dumps(card))
    return folder


def test_torchscript_folder_loads_and_segments_through_the_engine(tmp_path):
    from MedSegAILib.inference.engine import segment_volume

    folder = torchscript_folder(tmp_path / "scripted")
    model = load_model(load_model_card(folder), "cpu")
    array = np.full((16, 24, 24), -1000, np.int16)
    array[4:12, 6:18, 6:18] = 0
    volume = Volume(array, spacing=(4.0, 4.0, 4.0), origin=(0.0, 0.0, 0.0))
    result = segment_volume(volume, model)
    assert result.labels.same_grid(volume)
    assert result.class_names[0] == "background" and len(result.class_names) == 3
    assert result.labels.array[8, 12, 12] != 0 and result.labels.array[0, 0, 0] == 0


def test_torchscript_card_can_declare_a_monai_layout(tmp_path):
    folder = torchscript_folder(tmp_path / "ras", axcodes="RAS", intensity_range=[0.0, 1.0])
    network = load_model(load_model_card(folder), "cpu").network
    assert network.axcodes == "RAS" and network.intensity_range == (0.0, 1.0)


def test_tampered_torchscript_is_refused(tmp_path):
    folder = torchscript_folder(tmp_path / "scripted")
    with open(folder / "model.ts", "ab") as stream:
        stream.write(b"tampered")
    with pytest.raises(InputError, match="SHA-256 mismatch"):
        load_model(load_model_card(folder), "cpu")


def test_a_pickle_posing_as_torchscript_is_refused(tmp_path):
    path = tmp_path / "model.ts"
    path.write_bytes(b"\x80\x04not a zip archive")
    with pytest.raises(InputError, match="not a TorchScript archive"):
        load_torchscript(path, sha256_of_file(path))


def test_bundle_with_only_model_ts_uses_torchscript(tmp_path):
    root = make_segmentation_bundle(tmp_path / "ts_bundle", tmp_path / "trap.txt", torchscript=True)
    card = parse_model_card(bundle_card_data(root), folder=root)
    assert card.weights["file"] == "models/model.ts" and card.weights["format"] == "torchscript"
    with torch.no_grad():
        out = load_model(card, "cpu").network(torch.zeros(1, 1, 16, 32, 32))
    assert out.shape == (1, 4, 16, 32, 32)


def test_torchscript_folder_imports_under_its_card_name(tmp_path):
    folder = torchscript_folder(tmp_path / "source")
    card = import_model(folder, models_dir=tmp_path / "installed")
    assert card.name == "scripted" and (tmp_path / "installed" / "scripted" / "model.ts").is_file()
